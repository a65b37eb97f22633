import { expect, test } from "bun:test";
import { formatAddress, isLoopback } from "../src/address.ts";

test("IPv6 hosts are bracketed in addresses", () => {
  expect(formatAddress("::1", 20001)).toBe("[::1]:20001");
  expect(formatAddress("127.0.0.1", 20001)).toBe("127.0.0.1:20001");
});

test("loopback hosts: the server warns about every other one when it has neither TLS nor tokens", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) expect(isLoopback(host)).toBe(true);
  for (const host of ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.com", "127.0.0.1.example.com"])
    expect(isLoopback(host)).toBe(false);
});
