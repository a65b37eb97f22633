import { afterAll, beforeAll, expect, test } from "bun:test";
import { resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { useServer } from "../helpers/server.ts";

/**
 * A client generated at test time from the original HomeKV .proto (test/fixtures), sharing no code
 * with src/gen: it must work unchanged against today's server, which has grown new fields.
 */
const definition = protoLoader.loadSync(resolve(import.meta.dir, "../fixtures/original_homekv_service.proto"), {
  keepCase: true,
  longs: Number,
  defaults: false,
});
const pkg = grpc.loadPackageDefinition(definition) as any;

const server = useServer();
let client: any;

beforeAll(() => {
  client = new pkg.homekv_service.HomeKvService(server.address, grpc.credentials.createInsecure());
});

afterAll(() => {
  client.close();
});

const call = (method: string, request: object): Promise<any> =>
  new Promise((resolve, reject) =>
    client[method](request, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))),
  );

test("the original client's Set, Get, Del and Metrics work unchanged", async () => {
  expect(
    await call("Set", {
      records: [
        { key: "trail", value: Buffer.from("big_cedder") },
        { key: "empty", value: Buffer.alloc(0) },
        { key: "kept", value: Buffer.from("abc") },
      ],
    }),
  ).toEqual({
    succ: true,
  });
  const got = await call("Get", { keys: ["trail", "nope", "empty"] });
  expect(got.records).toHaveLength(3);
  expect(got.records[0]).toEqual({ key: "trail", value: Buffer.from("big_cedder") });
  // proto3 `optional`: a missing key has no value at all; an empty one is present and empty.
  expect(got.records[1]).toEqual({ key: "nope" });
  expect(got.records[2]).toEqual({ key: "empty", value: Buffer.alloc(0) });

  expect(await call("Del", { keys: ["trail", "nope"] })).toEqual({ succ: true });
  const { metrics } = await call("Metrics", {});
  expect(metrics).toEqual({ keys_count: 2, values_size_in_bytes: 3, cmds_count: 3 });
});
