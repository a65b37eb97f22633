import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient, HomeKvRpcError } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";

let server: ServerProcess;
let client: HomeKvClient;

beforeAll(async () => {
  // No history beyond the current revision: the GC figures below are exact then.
  server = await startServerProcess(["--history-revisions", "0"]);
  client = new HomeKvClient({ address: server.address });
});

afterAll(async () => {
  client.close();
  expect(await server.stop()).toBe(0);
});

async function rejection(promise: Promise<unknown>): Promise<HomeKvRpcError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HomeKvRpcError);
  return error as HomeKvRpcError;
}

describe("Get", () => {
  test("one record per key in request order; missing absent, empty present", async () => {
    await client.set({ "get/a": "1", "get/empty": "" });
    const { records } = await client.get(["get/missing", "get/a", "get/empty", "get/a"]);
    expect(records.map((r) => r.key)).toEqual(["get/missing", "get/a", "get/empty", "get/a"]);
    expect(records[0]!.value).toBeUndefined();
    expect(text(records[1]!.value)).toBe("1");
    expect(records[2]!.value).toBeInstanceOf(Uint8Array);
    expect(records[2]!.value!.byteLength).toBe(0);
  });

  test("reads at the revision of the last commit and says which", async () => {
    const { revision } = await client.set({ "get/rev": "x" });
    const read = await client.get(["get/rev"]);
    expect(read.revision).toBe(revision);
  });

  test("binary values round-trip byte for byte", async () => {
    const bytes = new Uint8Array([0, 255, 128, 10, 0]);
    await client.set([["get/bin", bytes]]);
    expect((await client.get(["get/bin"])).records[0]!.value).toEqual(bytes);
  });
});

describe("Set", () => {
  test("all records commit at one revision; the next write gets the next revision", async () => {
    const first = await client.set({ "set/a": "1", "set/b": "2" });
    const second = await client.set({ "set/c": "3" });
    expect(second.revision).toBe(first.revision + 1);
  });

  test("a record without a value deletes its key", async () => {
    await client.set({ "set/gone": "here" });
    await client.set({ "set/gone": null, "set/kept": "k" });
    const { records } = await client.get(["set/gone", "set/kept"]);
    expect(records[0]!.value).toBeUndefined();
    expect(text(records[1]!.value)).toBe("k");
  });

  test("a repeated key is INVALID_ARGUMENT naming it, and nothing is applied", async () => {
    const before = await client.metrics();
    const error = await rejection(
      client.set([
        ["set/dup-other", "x"],
        ["set/dup", "1"],
        ["set/dup", "2"],
      ]),
    );
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain('"set/dup"');
    const after = await client.metrics();
    expect(after.revision).toBe(before.revision);
    expect((await client.get(["set/dup-other"])).records[0]!.value).toBeUndefined();
  });

  test("readers see a batch whole or not at all while batches commit", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `atomic/${i}`);
    const writes = Array.from({ length: 40 }, (_, round) =>
      client.set(keys.map((key) => [key, `round-${round}`] as const)),
    );
    const reads = Array.from({ length: 40 }, () => client.get(keys));
    await Promise.all(writes);
    for (const { records } of await Promise.all(reads)) {
      const seen = new Set(records.map((r) => text(r.value)));
      expect(seen.size).toBe(1);
    }
  });
});

describe("Del", () => {
  test("deletes atomically; missing keys are fine; repeated keys count once", async () => {
    await client.set({ "del/a": "1", "del/b": "2" });
    const result = await client.del(["del/a", "del/a", "del/b", "del/missing"]);
    expect(result.deleted).toBe(2);
    const { records } = await client.get(["del/a", "del/b"]);
    expect(records.every((r) => r.value === undefined)).toBe(true);
  });
});

describe("Metrics", () => {
  test("keys, value bytes and commands stay exact through overwrites, deletes and rejections", async () => {
    const start = await client.metrics();
    const delta = async () => {
      const now = await client.metrics();
      return {
        keys: now.keysCount - start.keysCount,
        bytes: now.valuesSizeInBytes - start.valuesSizeInBytes,
        cmds: now.cmdsCount - start.cmdsCount,
        rejected: now.cmdsRejected - start.cmdsRejected,
      };
    };
    await client.set({ "m/a": "12345" }); // +1 key, +5 bytes
    await client.set({ "m/a": "1234567890" }); // longer overwrite: +5
    await client.set({ "m/a": "1" }); // shorter overwrite: -9
    await client.del(["m/missing", "m/missing"]); // nothing
    await client.set({ "m/missing": null }); // set-as-delete of a missing key: nothing
    await client.set({ "m/b": "xy" }); // +1 key, +2
    await client.set({ "m/b": null }); // set-as-delete: -1 key, -2
    await client.get(["m/a"]);
    await rejection(
      client.set([
        ["m/c", "1"],
        ["m/c", "2"],
      ]),
    );
    await rejection(client.get([""]));
    expect(await delta()).toEqual({ keys: 1, bytes: 1, cmds: 8, rejected: 2 });
  });

  test("versions retained fall back to live keys once GC has run", async () => {
    for (let i = 0; i < 20; i++) await client.set({ "gc/k": `v${i}` });
    await Bun.sleep(50);
    const metrics = await client.metrics();
    expect(metrics.versionsRetained).toBe(metrics.keysCount);
    expect(metrics.gcVersionsCollected).toBeGreaterThan(0);
    expect(metrics.uptimeMs).toBeGreaterThan(0);
  });
});

describe("limits: each over-limit request is refused whole, naming the limit, and the server goes on", () => {
  test("empty key", async () => {
    const error = await rejection(client.set({ "": "x" }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("empty");
  });

  test("key over 4 KiB", async () => {
    const error = await rejection(client.set({ ok: "1", ["k".repeat(4097)]: "x" }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("4096 bytes (--max-key-bytes)");
    expect((await client.get(["ok"])).records[0]!.value).toBeUndefined();
  });

  test("key at 4 KiB of multi-byte UTF-8 is measured in bytes", async () => {
    const error = await rejection(client.get(["é".repeat(2049)]));
    expect(error.details).toContain("4098 bytes");
    await client.set({ ["é".repeat(2048)]: "fits" });
  });

  test("value over 1 MiB", async () => {
    const error = await rejection(client.set([["big", new Uint8Array(1024 * 1024 + 1)]]));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("1048576 bytes (--max-value-bytes)");
  });

  test("more than 10,000 keys", async () => {
    const keys = Array.from({ length: 10_001 }, (_, i) => `many/${i}`);
    const error = await rejection(client.del(keys));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("10000 keys (--max-keys-per-request)");
  });

  test("request message over 16 MiB", async () => {
    const value = new Uint8Array(1024 * 1024 - 100);
    const records = Array.from({ length: 17 }, (_, i) => [`huge/${i}`, value] as const);
    const error = await rejection(client.set(records));
    expect(error.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(error.details).toContain("16777216 bytes (--max-request-bytes)");
    expect((await client.get(["huge/0"])).records[0]!.value).toBeUndefined();
  });

  test("the server still serves after every rejection", async () => {
    const { revision } = await client.set({ "after/ok": "yes" });
    expect(revision).toBeGreaterThan(0);
    expect(text((await client.get(["after/ok"])).records[0]!.value)).toBe("yes");
  });
});
