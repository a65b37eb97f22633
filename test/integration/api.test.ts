import { describe, expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import { text } from "../helpers/bytes.ts";
import { rpcRejection, useServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

// No history beyond the current revision: the GC figures below are exact then.
const server = useServer(["--history-revisions", "0"]);

describe("Get", () => {
  test("one record per key in request order; missing absent, empty present", async () => {
    await server.client.set({ "get/a": "1", "get/empty": "" });
    const { records } = await server.client.get(["get/missing", "get/a", "get/empty", "get/a"]);
    expect(records.map((r) => r.key)).toEqual(["get/missing", "get/a", "get/empty", "get/a"]);
    expect(records[0]!.value).toBeUndefined();
    expect(text(records[1]!.value)).toBe("1");
    expect(records[2]!.value).toBeInstanceOf(Uint8Array);
    expect(records[2]!.value!.byteLength).toBe(0);
  });

  test("reads at the revision of the last commit and says which", async () => {
    const { revision } = await server.client.set({ "get/rev": "x" });
    const read = await server.client.get(["get/rev"]);
    expect(read.revision).toBe(revision);
  });

  test("binary values round-trip byte for byte", async () => {
    const bytes = new Uint8Array([0, 255, 128, 10, 0]);
    await server.client.set([["get/bin", bytes]]);
    expect((await server.client.get(["get/bin"])).records[0]!.value).toEqual(bytes);
  });
});

describe("Set", () => {
  test("all records commit at one revision; the next write gets the next revision", async () => {
    const first = await server.client.set({ "set/a": "1", "set/b": "2" });
    const second = await server.client.set({ "set/c": "3" });
    expect(second.revision).toBe(first.revision + 1);
  });

  test("a record without a value deletes its key", async () => {
    await server.client.set({ "set/gone": "here" });
    await server.client.set({ "set/gone": null, "set/kept": "k" });
    const { records } = await server.client.get(["set/gone", "set/kept"]);
    expect(records[0]!.value).toBeUndefined();
    expect(text(records[1]!.value)).toBe("k");
  });

  test("a repeated key is INVALID_ARGUMENT naming it, and nothing is applied", async () => {
    const before = await server.client.metrics();
    const error = await rpcRejection(
      server.client.set([
        ["set/dup-other", "x"],
        ["set/dup", "1"],
        ["set/dup", "2"],
      ]),
    );
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain('"set/dup"');
    const after = await server.client.metrics();
    expect(after.revision).toBe(before.revision);
    expect((await server.client.get(["set/dup-other"])).records[0]!.value).toBeUndefined();
  });

  test("readers see a batch whole or not at all while batches commit", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `atomic/${i}`);
    const writes = Array.from({ length: 40 }, (_, round) =>
      server.client.set(keys.map((key) => [key, `round-${round}`] as const)),
    );
    const reads = Array.from({ length: 40 }, () => server.client.get(keys));
    await Promise.all(writes);
    for (const { records } of await Promise.all(reads)) {
      const seen = new Set(records.map((r) => text(r.value)));
      expect(seen.size).toBe(1);
    }
  });
});

describe("Del", () => {
  test("deletes atomically; missing keys are fine; repeated keys count once", async () => {
    await server.client.set({ "del/a": "1", "del/b": "2" });
    const result = await server.client.del(["del/a", "del/a", "del/b", "del/missing"]);
    expect(result.deleted).toBe(2);
    const { records } = await server.client.get(["del/a", "del/b"]);
    expect(records.every((r) => r.value === undefined)).toBe(true);
  });
});

describe("Metrics", () => {
  test("keys, value bytes and commands stay exact through overwrites, deletes and rejections", async () => {
    const start = await server.client.metrics();
    const delta = async () => {
      const now = await server.client.metrics();
      return {
        keys: now.keysCount - start.keysCount,
        bytes: now.valuesSizeInBytes - start.valuesSizeInBytes,
        cmds: now.cmdsCount - start.cmdsCount,
        rejected: now.cmdsRejected - start.cmdsRejected,
      };
    };
    await server.client.set({ "m/a": "12345" }); // +1 key, +5 bytes
    await server.client.set({ "m/a": "1234567890" }); // longer overwrite: +5
    await server.client.set({ "m/a": "1" }); // shorter overwrite: -9
    await server.client.del(["m/missing", "m/missing"]); // nothing
    await server.client.set({ "m/missing": null }); // set-as-delete of a missing key: nothing
    await server.client.set({ "m/b": "xy" }); // +1 key, +2
    await server.client.set({ "m/b": null }); // set-as-delete: -1 key, -2
    await server.client.get(["m/a"]);
    await rpcRejection(
      server.client.set([
        ["m/c", "1"],
        ["m/c", "2"],
      ]),
    );
    await rpcRejection(server.client.get([""]));
    expect(await delta()).toEqual({ keys: 1, bytes: 1, cmds: 8, rejected: 2 });
  });

  test("versions retained fall back to live keys once GC has run", async () => {
    for (let i = 0; i < 20; i++) await server.client.set({ "gc/k": `v${i}` });
    // GC runs in the background, in slices: poll until it has caught up.
    let metrics = await server.client.metrics();
    await waitFor(async () => (metrics = await server.client.metrics()).versionsRetained === metrics.keysCount, {
      what: "GC to bring the versions retained down to the live keys",
      detail: () => `versions retained ${metrics.versionsRetained}, keys ${metrics.keysCount}`,
    });
    expect(metrics.gcVersionsCollected).toBeGreaterThan(0);
    expect(metrics.uptimeMs).toBeGreaterThan(0);
  });
});

describe("limits: each over-limit request is refused whole, naming the limit, and the server goes on", () => {
  test("empty key", async () => {
    const error = await rpcRejection(server.client.set({ "": "x" }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("empty");
  });

  test("key over 4 KiB", async () => {
    const error = await rpcRejection(server.client.set({ ok: "1", ["k".repeat(4097)]: "x" }));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("4096 bytes (--max-key-bytes)");
    expect((await server.client.get(["ok"])).records[0]!.value).toBeUndefined();
  });

  test("key at 4 KiB of multi-byte UTF-8 is measured in bytes", async () => {
    const error = await rpcRejection(server.client.get(["é".repeat(2049)]));
    expect(error.details).toContain("4098 bytes");
    await server.client.set({ ["é".repeat(2048)]: "fits" });
  });

  test("request id over 4 KiB, with keys or with none: refused before anything is written", async () => {
    const long = "r".repeat(4097);
    for (const write of [
      server.client.set({ "rid/1": "x" }, { requestId: long }),
      server.client.set({}, { requestId: long }),
      server.client.del([], { requestId: long }),
    ]) {
      const error = await rpcRejection(write);
      expect(error.code).toBe(Status.INVALID_ARGUMENT);
      expect(error.details).toBe("the request id is 4097 bytes; at most 4096 (--max-key-bytes)");
    }
    expect((await server.client.get(["rid/1"])).records[0]!.value).toBeUndefined();
  });

  test("value over 1 MiB", async () => {
    const error = await rpcRejection(server.client.set([["big", new Uint8Array(1024 * 1024 + 1)]]));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("1048576 bytes (--max-value-bytes)");
  });

  test("more than 10,000 keys", async () => {
    const keys = Array.from({ length: 10_001 }, (_, i) => `many/${i}`);
    const error = await rpcRejection(server.client.del(keys));
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.details).toContain("10000 keys (--max-keys-per-request)");
  });

  test("request message over 16 MiB", async () => {
    const value = new Uint8Array(1024 * 1024 - 100);
    const records = Array.from({ length: 17 }, (_, i) => [`huge/${i}`, value] as const);
    const error = await rpcRejection(server.client.set(records));
    expect(error.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(error.details).toContain("16777216 bytes (--max-request-bytes)");
    expect((await server.client.get(["huge/0"])).records[0]!.value).toBeUndefined();
  });

  test("the server still serves after every rejection", async () => {
    const { revision } = await server.client.set({ "after/ok": "yes" });
    expect(revision).toBeGreaterThan(0);
    expect(text((await server.client.get(["after/ok"])).records[0]!.value)).toBe("yes");
  });
});
