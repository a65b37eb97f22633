import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient, HomeKvRpcError } from "../../src/client/client.ts";
import { Compare_Op, Compare_Target } from "../../src/gen/homekv_service.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";

let server: ServerProcess;
let client: HomeKvClient;

beforeAll(async () => {
  server = await startServerProcess(["--history-revisions", "50"]);
  client = new HomeKvClient({ address: server.address });
});

afterAll(async () => {
  client.close();
  await server.stop();
});

async function rejection(promise: Promise<unknown>): Promise<HomeKvRpcError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HomeKvRpcError);
  return error as HomeKvRpcError;
}

describe("reads at a revision", () => {
  test("Get at an older revision sees the state then, with each key's revisions and version", async () => {
    const first = await client.set({ "rev/a": "1" });
    await client.set({ "rev/a": "2", "rev/b": "x" });
    const then = await client.get(["rev/a", "rev/b"], { revision: first.revision });
    expect(then.revision).toBe(first.revision);
    expect(text(then.records[0]!.value)).toBe("1");
    expect(then.records[1]!.value).toBeUndefined();
    const now = await client.get(["rev/a"]);
    expect(now.records[0]).toMatchObject({
      modRevision: first.revision + 1,
      createRevision: first.revision,
      version: 2,
    });
  });

  test("a future revision and a compacted one are OUT_OF_RANGE, naming the oldest readable revision", async () => {
    const { revision } = await client.set({ "rev/c": "1" });
    expect((await rejection(client.get(["rev/c"], { revision: revision + 10 }))).code).toBe(Status.OUT_OF_RANGE);
    for (let i = 0; i < 60; i++) await client.set({ "rev/churn": String(i) });
    const error = await rejection(client.get(["rev/c"], { revision }));
    expect(error.code).toBe(Status.OUT_OF_RANGE);
    expect(error.details).toMatch(/compacted \(oldest readable \d+\)/);
  });

  test("Compact makes older revisions unreadable; compacting again below is refused", async () => {
    const { revision } = await client.set({ "cmp/a": "1" });
    await client.set({ "cmp/a": "2" });
    const result = await client.compact(revision + 1);
    expect(result.compactedRevision).toBe(revision + 1);
    expect((await rejection(client.get(["cmp/a"], { revision }))).code).toBe(Status.OUT_OF_RANGE);
    expect((await rejection(client.compact(revision))).code).toBe(Status.OUT_OF_RANGE);
    expect((await rejection(client.compact(result.revision + 100))).code).toBe(Status.OUT_OF_RANGE);
  });
});

describe("Scan", () => {
  test("prefix and [start, end) in key order, reverse, keys only, limit", async () => {
    await client.set(Object.fromEntries(["s/a", "s/b", "s/c", "s/d", "t/a"].map((k) => [k, `v-${k}`])));
    const keys = async (options: Parameters<HomeKvClient["scanPage"]>[0]) =>
      (await client.scanPage(options)).records.map((r) => r.key);
    expect(await keys({ prefix: "s/" })).toEqual(["s/a", "s/b", "s/c", "s/d"]);
    expect(await keys({ start: "s/b", end: "s/d" })).toEqual(["s/b", "s/c"]);
    expect(await keys({ prefix: "s/", reverse: true, limit: 2 })).toEqual(["s/d", "s/c"]);
    const keysOnly = await client.scanPage({ prefix: "s/", keysOnly: true });
    expect(keysOnly.records.every((r) => r.value === undefined && r.modRevision > 0)).toBe(true);
  });

  test("pages continue at the first page's revision while writers change the range", async () => {
    const all = Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [`page/${String(i).padStart(3, "0")}`, "before"]),
    );
    await client.set(all);
    let page = await client.scanPage({ prefix: "page/", limit: 7 });
    const seen = [...page.records];
    let writes = 0;
    while (page.continuation !== "") {
      // Between pages: overwrite everything, delete some, add new keys.
      await client.set({
        ...Object.fromEntries(Object.keys(all).map((k) => [k, "after"])),
        [`page/new${writes++}`]: "new",
      });
      await client.del(["page/000", "page/059"]);
      page = await client.scanPage({ continuation: page.continuation, limit: 7 });
      seen.push(...page.records);
    }
    expect(seen.map((r) => r.key)).toEqual(Object.keys(all));
    expect(new Set(seen.map((r) => text(r.value)))).toEqual(new Set(["before"]));
    expect(writes).toBeGreaterThan(5);
  });

  test("the async iterator walks every page", async () => {
    const keys: string[] = [];
    for await (const record of client.scan({ prefix: "page/", limit: 9 })) keys.push(record.key);
    expect(keys.length).toBeGreaterThanOrEqual(58);
  });

  test("bad ranges and tokens are INVALID_ARGUMENT naming the problem", async () => {
    expect((await rejection(client.scanPage({ start: "b", end: "a" }))).details).toContain("inverted");
    expect((await rejection(client.scanPage({ prefix: "p", start: "a" }))).details).toContain(
      "either prefix or start/end",
    );
    expect((await rejection(client.scanPage({ continuation: "garbage" }))).details).toContain("continuation");
    expect((await rejection(client.scanPage({ prefix: "p", limit: 20_000 }))).details).toContain(
      "--max-keys-per-request",
    );
  });
});

describe("Txn", () => {
  test("compares pick the branch; writes and reads apply at one revision", async () => {
    const { revision } = await client.set({ "tx/a": "1" });
    const ok = await client.txn({
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

    const stale = await client.txn({
      compares: [{ key: "tx/a", target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: revision }],
      success: [{ op: { $case: "put", put: { key: "tx/a", value: bytes("3") } } }],
      failure: [{ op: { $case: "get", get: "tx/a" } }],
    });
    expect(stale.succeeded).toBe(false);
    expect(text(stale.records[0]!.value)).toBe("2");
  });

  test("value, version and existence compares", async () => {
    await client.set({ "tx/v": "abc" });
    const check = async (compares: any[]) =>
      (await client.txn({ compares, success: [{ op: { $case: "get", get: "tx/v" } }] })).succeeded;
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
    const { revision } = await client.set({ "race/k": "start" });
    const racers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.txn({
          compares: [{ key: "race/k", target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: revision }],
          success: [{ op: { $case: "put", put: { key: "race/k", value: bytes(`w${i}`) } } }],
        }),
      ),
    );
    const winners = racers.filter((r) => r.succeeded);
    expect(winners).toHaveLength(1);
    const final = await client.get(["race/k"]);
    expect(text(final.records[0]!.value)).toBe(`w${racers.indexOf(winners[0]!)}`);
  });

  test("bad transactions are INVALID_ARGUMENT naming the field", async () => {
    expect((await rejection(client.txn({ compares: [{ key: "a", target: 42 as Compare_Target }] }))).details).toContain(
      "compares[0].target",
    );
    expect((await rejection(client.txn({ success: [{ op: { $case: "delete", delete: "" } }] }))).details).toContain(
      "empty",
    );
    const twice = client.txn({
      success: [
        { op: { $case: "delete", delete: "k" } },
        { op: { $case: "put", put: { key: "k", value: bytes("1") } } },
      ],
    });
    expect((await rejection(twice)).details).toContain("more than once");
  });
});

describe("metrics count the new operations", () => {
  test("Scan, Txn and Compact count as commands", async () => {
    const before = await client.metrics();
    await client.scanPage({ prefix: "s/" });
    await client.txn({ success: [{ op: { $case: "get", get: "tx/a" } }] });
    const after = await client.metrics();
    expect(after.cmdsCount - before.cmdsCount).toBe(2);
    expect(after.compactedRevision).toBeGreaterThan(0);
  });
});

describe("after a restart from the data directory", () => {
  test("history within retention, compaction and revisions survive", async () => {
    const { revision } = await client.set({ "keep/a": "old" });
    await client.set({ "keep/a": "new" });
    const compacted = (await client.metrics()).compactedRevision;
    client.close();
    const dataDir = /data in ([^,]+),/.exec(server.output())?.[1];
    expect(dataDir).toBeDefined();
    // Restart on the same directory (the helper's own directory is removed only by stop()).
    server.proc.kill("SIGTERM");
    await server.proc.exited;
    const again = await startServerProcess(["--history-revisions", "50", "--data-dir", dataDir!]);
    const fresh = new HomeKvClient({ address: again.address });
    try {
      expect(text((await fresh.get(["keep/a"], { revision })).records[0]!.value)).toBe("old");
      expect((await fresh.metrics()).compactedRevision).toBe(compacted);
    } finally {
      fresh.close();
      await again.stop();
    }
    server = await startServerProcess(["--history-revisions", "50"]);
    client = new HomeKvClient({ address: server.address });
  });
});
