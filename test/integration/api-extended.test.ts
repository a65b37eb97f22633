import { describe, expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import type { HomeKvClient } from "../../src/client/client.ts";
import { Compare_Op, Compare_Target } from "../../src/gen/homekv_service.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { scratchDir } from "../helpers/processes.ts";
import { rpcRejection, useServer, withServer } from "../helpers/server.ts";

const server = useServer(["--history-revisions", "50"]);

describe("reads at a revision", () => {
  test("Get at an older revision sees the state then, with each key's revisions and version", async () => {
    const first = await server.client.set({ "rev/a": "1" });
    await server.client.set({ "rev/a": "2", "rev/b": "x" });
    const then = await server.client.get(["rev/a", "rev/b"], { revision: first.revision });
    expect(then.revision).toBe(first.revision);
    expect(text(then.records[0]!.value)).toBe("1");
    expect(then.records[1]!.value).toBeUndefined();
    const now = await server.client.get(["rev/a"]);
    expect(now.records[0]).toMatchObject({
      modRevision: first.revision + 1,
      createRevision: first.revision,
      version: 2,
    });
  });

  test("a future revision and a compacted one are OUT_OF_RANGE, naming the oldest readable revision", async () => {
    const { revision } = await server.client.set({ "rev/c": "1" });
    expect((await rpcRejection(server.client.get(["rev/c"], { revision: revision + 10 }))).code).toBe(
      Status.OUT_OF_RANGE,
    );
    for (let i = 0; i < 60; i++) await server.client.set({ "rev/churn": String(i) });
    const error = await rpcRejection(server.client.get(["rev/c"], { revision }));
    expect(error.code).toBe(Status.OUT_OF_RANGE);
    expect(error.details).toMatch(/compacted \(oldest readable \d+\)/);
  });

  test("Compact makes older revisions unreadable; compacting again below is refused", async () => {
    const { revision } = await server.client.set({ "cmp/a": "1" });
    await server.client.set({ "cmp/a": "2" });
    const result = await server.client.compact(revision + 1);
    expect(result.compactedRevision).toBe(revision + 1);
    expect((await rpcRejection(server.client.get(["cmp/a"], { revision }))).code).toBe(Status.OUT_OF_RANGE);
    expect((await rpcRejection(server.client.compact(revision))).code).toBe(Status.OUT_OF_RANGE);
    expect((await rpcRejection(server.client.compact(result.revision + 100))).code).toBe(Status.OUT_OF_RANGE);
  });
});

describe("Scan", () => {
  test("prefix and [start, end) in key order, reverse, keys only, limit", async () => {
    await server.client.set(Object.fromEntries(["s/a", "s/b", "s/c", "s/d", "t/a"].map((k) => [k, `v-${k}`])));
    const keys = async (options: Parameters<HomeKvClient["scanPage"]>[0]) =>
      (await server.client.scanPage(options)).records.map((r) => r.key);
    expect(await keys({ prefix: "s/" })).toEqual(["s/a", "s/b", "s/c", "s/d"]);
    expect(await keys({ start: "s/b", end: "s/d" })).toEqual(["s/b", "s/c"]);
    expect(await keys({ prefix: "s/", reverse: true, limit: 2 })).toEqual(["s/d", "s/c"]);
    const keysOnly = await server.client.scanPage({ prefix: "s/", keysOnly: true });
    expect(keysOnly.records.every((r) => r.value === undefined && r.modRevision > 0)).toBe(true);
  });

  test("pages continue at the first page's revision while writers change the range", async () => {
    const all = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [`page/${String(i).padStart(3, "0")}`, "before"]),
    );
    await server.client.set(all);
    let page = await server.client.scanPage({ prefix: "page/", limit: 7 });
    const seen = [...page.records];
    let writes = 0;
    while (page.continuation !== "") {
      // Between pages: overwrite everything, delete some, add new keys.
      await server.client.set({
        ...Object.fromEntries(Object.keys(all).map((k) => [k, "after"])),
        [`page/new${writes++}`]: "new",
      });
      await server.client.del(["page/000", "page/059"]);
      page = await server.client.scanPage({ continuation: page.continuation, limit: 7 });
      seen.push(...page.records);
    }
    expect(seen.map((r) => r.key)).toEqual(Object.keys(all));
    expect(new Set(seen.map((r) => text(r.value)))).toEqual(new Set(["before"]));
    expect(writes).toBeGreaterThan(5);
  });

  test("the async iterator walks every page", async () => {
    const keys: string[] = [];
    for await (const record of server.client.scan({ prefix: "page/", limit: 9 })) keys.push(record.key);
    expect(keys.length).toBeGreaterThanOrEqual(58);
  });

  test("bad ranges and tokens are INVALID_ARGUMENT naming the problem", async () => {
    expect((await rpcRejection(server.client.scanPage({ start: "b", end: "a" }))).details).toContain("inverted");
    expect((await rpcRejection(server.client.scanPage({ prefix: "p", start: "a" }))).details).toContain(
      "either prefix or start/end",
    );
    expect((await rpcRejection(server.client.scanPage({ continuation: "garbage" }))).details).toContain("continuation");
    expect((await rpcRejection(server.client.scanPage({ prefix: "p", limit: 20_000 }))).details).toContain(
      "--max-keys-per-request",
    );
  });
});

describe("Txn", () => {
  test("compares pick the branch; writes and reads apply at one revision", async () => {
    const { revision } = await server.client.set({ "tx/a": "1" });
    const ok = await server.client.txn({
      compares: [{ key: "tx/a", target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: revision }],
      success: [
        { op: { $case: "put", put: { key: "tx/a", value: bytes("2") } } },
        { op: { $case: "get", get: "tx/a" } },
      ],
      failure: [{ op: { $case: "get", get: "tx/a" } }],
    });
    expect(ok.succeeded).toBe(true);
    expect(ok.revision).toBe(revision + 1);
    expect(text(ok.records[0]!.value)).toBe("2");

    const stale = await server.client.txn({
      compares: [{ key: "tx/a", target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: revision }],
      success: [{ op: { $case: "put", put: { key: "tx/a", value: bytes("3") } } }],
      failure: [{ op: { $case: "get", get: "tx/a" } }],
    });
    expect(stale.succeeded).toBe(false);
    expect(text(stale.records[0]!.value)).toBe("2");
  });

  test("value, version and existence compares", async () => {
    await server.client.set({ "tx/v": "abc" });
    const check = async (compares: any[]) =>
      (await server.client.txn({ compares, success: [{ op: { $case: "get", get: "tx/v" } }] })).succeeded;
    expect(
      await check([{ key: "tx/v", target: Compare_Target.VALUE, op: Compare_Op.EQUAL, value: bytes("abc") }]),
    ).toBe(true);
    expect(
      await check([{ key: "tx/v", target: Compare_Target.VALUE, op: Compare_Op.GREATER, value: bytes("abb") }]),
    ).toBe(true);
    expect(await check([{ key: "tx/v", target: Compare_Target.VERSION, op: Compare_Op.EQUAL, number: 1 }])).toBe(true);
    expect(await check([{ key: "tx/none", target: Compare_Target.EXISTS, op: Compare_Op.EQUAL, number: 0 }])).toBe(
      true,
    );
    expect(await check([{ key: "tx/v", target: Compare_Target.EXISTS, op: Compare_Op.EQUAL, number: 0 }])).toBe(false);
  });

  test("racing compare-and-set writers: exactly one wins", async () => {
    const { revision } = await server.client.set({ "race/k": "start" });
    const racers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.client.txn({
          compares: [{ key: "race/k", target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: revision }],
          success: [{ op: { $case: "put", put: { key: "race/k", value: bytes(`w${i}`) } } }],
        }),
      ),
    );
    const winners = racers.filter((r) => r.succeeded);
    expect(winners).toHaveLength(1);
    const final = await server.client.get(["race/k"]);
    expect(text(final.records[0]!.value)).toBe(`w${racers.indexOf(winners[0]!)}`);
  });

  test("bad transactions are INVALID_ARGUMENT naming the field", async () => {
    expect(
      (await rpcRejection(server.client.txn({ compares: [{ key: "a", target: 42 as Compare_Target }] }))).details,
    ).toContain("compares[0].target");
    expect(
      (await rpcRejection(server.client.txn({ success: [{ op: { $case: "delete", delete: "" } }] }))).details,
    ).toBe("success[0]: a key must not be empty");
    const late = server.client.txn({
      failure: [{ op: { $case: "get", get: "fine" } }, { op: { $case: "put", put: { key: "", value: bytes("1") } } }],
    });
    expect((await rpcRejection(late)).details).toBe("failure[1]: a key must not be empty");
    expect((await rpcRejection(server.client.txn({ compares: [{ key: "" }] }))).details).toBe(
      "compares[0]: a key must not be empty",
    );
    const twice = server.client.txn({
      success: [
        { op: { $case: "delete", delete: "k" } },
        { op: { $case: "put", put: { key: "k", value: bytes("1") } } },
      ],
    });
    expect((await rpcRejection(twice)).details).toContain("more than once");
  });
});

describe("metrics count the new operations", () => {
  test("Scan, Txn and Compact count as commands", async () => {
    const before = await server.client.metrics();
    await server.client.scanPage({ prefix: "s/" });
    await server.client.txn({ success: [{ op: { $case: "get", get: "tx/a" } }] });
    const after = await server.client.metrics();
    expect(after.cmdsCount - before.cmdsCount).toBe(2);
    expect(after.compactedRevision).toBeGreaterThan(0);
  });
});

describe("after a restart from the data directory", () => {
  test("history within retention, compaction and revisions survive", async () => {
    const dir = scratchDir();
    try {
      const args = ["--history-revisions", "50", "--data-dir", dir.path];
      const before = await withServer(args, async ({ client }) => {
        await client.set({ "keep/b": "1" });
        const { revision } = await client.set({ "keep/a": "old" });
        await client.set({ "keep/a": "new" });
        await client.compact(revision);
        return { revision, compacted: (await client.metrics()).compactedRevision };
      });
      expect(before.compacted).toBe(before.revision);
      await withServer(args, async ({ client }) => {
        expect(text((await client.get(["keep/a"], { revision: before.revision })).records[0]!.value)).toBe("old");
        expect((await client.metrics()).compactedRevision).toBe(before.compacted);
      });
    } finally {
      dir.cleanup();
    }
  });
});
