import { expect, test } from "bun:test";
import { parseGrpcTimeout } from "../../../src/server/h2/grpc-headers.ts";

test("grpc-timeout: 1 to 8 digits and a unit, in milliseconds; anything else is malformed", () => {
  expect(parseGrpcTimeout("5000m")).toBe(5_000);
  expect(parseGrpcTimeout("1S")).toBe(1_000);
  expect(parseGrpcTimeout("2H")).toBe(7_200_000);
  expect(parseGrpcTimeout("3M")).toBe(180_000);
  expect(parseGrpcTimeout("250u")).toBeCloseTo(0.25);
  expect(parseGrpcTimeout("99999999n")).toBeCloseTo(99.999999);
  expect(parseGrpcTimeout("0m")).toBe(0);
  for (const malformed of ["", "m", "5", "123456789m", "5x", "-5m", "5.0m", " 5m", "5m ", "0x5m", "５m", "soon"])
    expect(parseGrpcTimeout(malformed)).toBeUndefined();
});
