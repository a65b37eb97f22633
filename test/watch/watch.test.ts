import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { credentials, status as Status } from "@grpc/grpc-js";
import { HomeKvClient, HomeKvRpcError, type WatchEvent, type WatchOptions } from "../../src/client/client.ts";
import { HomeKvServiceClient, WatchRequest, type WatchResponse } from "../../src/gen/homekv_service.ts";
import { text } from "../helpers/bytes.ts";
import { recoveryLine } from "../helpers/durability.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";
import { waitForWatchers } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const show = (e: WatchEvent) => `${e.revision}:${e.type}:${e.key}${e.value ? `=${text(e.value)}` : ""}`;

/** The first `count` events of a watch; fails (rather than hangs) when they do not come in time. */
async function collect(
  client: HomeKvClient,
  options: WatchOptions,
  count: number,
  timeoutMs = 10_000,
): Promise<WatchEvent[]> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  const events: WatchEvent[] = [];
  try {
    for await (const event of client.watch(options, stop.signal)) {
      events.push(event);
      if (events.length === count) break;
    }
  } finally {
    clearTimeout(timer);
  }
  if (events.length < count)
    throw new Error(`only ${events.length} of ${count} events in ${timeoutMs} ms: ${events.map(show).join(", ")}`);
  return events;
}

/** The error a watch ends with (after whatever events came first). */
async function watchError(client: HomeKvClient, options: WatchOptions, timeoutMs = 10_000): Promise<HomeKvRpcError> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  try {
    for await (const _ of client.watch(options, stop.signal)) {
      // events before the error are not what this is about
    }
  } catch (error) {
    expect(error).toBeInstanceOf(HomeKvRpcError);
    return error as HomeKvRpcError;
  } finally {
    clearTimeout(timer);
  }
  throw new Error("the watch ended without an error");
}

describe("one server", () => {
  let server: ServerProcess;
  let client: HomeKvClient;

  beforeAll(async () => {
    server = await startServerProcess();
    client = new HomeKvClient({ address: server.address });
  });

  afterAll(async () => {
    client.close();
    expect(await server.stop()).toBe(0);
  });

  test("a key, a prefix and a range: types, values, revisions, previous values; live and replayed alike", async () => {
    const { revision: base } = await client.set({ "w/a": "0" });
    const from = base + 1;
    const live = {
      key: collect(client, { key: "w/a", startRevision: from, prevValue: true }, 3),
      prefix: collect(client, { prefix: "w/", startRevision: from }, 5),
      range: collect(client, { start: "w/b", end: "w/d", startRevision: from }, 3),
    };
    await client.set({ "w/a": "1", "w/b": "b1", "x/a": "no" }); // from
    await client.set({ "w/c": "c1", "w/d": "not in the range" }); // from + 1
    await client.del(["w/a", "w/missing"]); // from + 2
    await client.set({ "w/a": "again", "w/b": null }); // from + 3
    const key = await live.key;
    expect(key.map(show)).toEqual([`${from}:put:w/a=1`, `${from + 2}:delete:w/a`, `${from + 3}:put:w/a=again`]);
    expect(key.map((e) => text(e.prevValue))).toEqual(["0", "1", undefined]);
    expect([key[0]!.createRevision, key[0]!.version, key[2]!.createRevision, key[2]!.version]).toEqual([
      base,
      2,
      from + 3,
      1,
    ]);
    const prefix = await live.prefix;
    expect(prefix.map(show).slice(0, 4)).toEqual([
      `${from}:put:w/a=1`,
      `${from}:put:w/b=b1`,
      `${from + 1}:put:w/c=c1`,
      `${from + 1}:put:w/d=not in the range`,
    ]);
    expect(prefix.every((e) => !("prevValue" in e))).toBe(true);
    expect((await live.range).map(show)).toEqual([
      `${from}:put:w/b=b1`,
      `${from + 1}:put:w/c=c1`,
      `${from + 3}:delete:w/b`,
    ]);
    // Started after the writes, the same watches replay the same events from the history.
    expect(
      (await collect(client, { key: "w/a", startRevision: from, prevValue: true }, 3)).map((e) => [
        show(e),
        text(e.prevValue),
      ]),
    ).toEqual(key.map((e) => [show(e), text(e.prevValue)]));
    expect((await collect(client, { start: "w/b", end: "w/d", startRevision: from }, 3)).map(show)).toEqual(
      (await live.range).map(show),
    );
  });

  test("a request that is not exactly one of key, prefix or range is INVALID_ARGUMENT naming what is wrong", async () => {
    const cases: [WatchOptions, string][] = [
      [{}, "needs a key, a prefix or a range"],
      [{ key: "a", prefix: "b" }, "not key and prefix"],
      [{ prefix: "a", start: "b" }, "not prefix and start/end"],
      [{ start: "m", end: "a" }, 'end "a" is not after start "m"'],
      [{ start: "m", end: "m" }, 'end "m" is not after start "m"'],
      [{ key: "k".repeat(5_000) }, "--max-key-bytes"],
    ];
    for (const [options, message] of cases) {
      const error = await watchError(client, options);
      expect({ options: Object.keys(options), code: Status[error.code] }).toEqual({
        options: Object.keys(options),
        code: "INVALID_ARGUMENT",
      });
      expect(error.details).toContain(message);
    }
  });

  test("resuming from the last revision + 1 after a dropped connection misses nothing and repeats nothing while writers run", async () => {
    const { revision: start } = await client.set({ "r/seed": "0" });
    const writes = 300;
    const writer = new HomeKvClient({ address: server.address });
    const written: number[] = [];
    let writerDone = false;
    const writing = (async () => {
      for (let i = 0; i < writes; i++) {
        written.push((await writer.set({ [`r/${i % 7}`]: String(i), "other/noise": String(i) })).revision);
        if (i % 3 === 0) {
          const { revision, deleted } = await writer.del([`r/${(i + 3) % 7}`]);
          if (deleted > 0) written.push(revision);
        }
      }
    })().finally(() => {
      writerDone = true;
    });
    const seen: WatchEvent[] = [];
    const caughtUp = () => writerDone && seen.length > 0 && seen.at(-1)!.revision >= written.at(-1)!;
    // Each connection reads a few events and drops (its client closed mid-stream); the next resumes.
    for (let connection = 0; connection < 200 && !caughtUp(); connection++) {
      const watcher = new HomeKvClient({ address: server.address });
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), 10_000);
      const watchdog = setInterval(() => caughtUp() && stop.abort(), 20);
      const next = seen.length === 0 ? start + 1 : seen.at(-1)!.revision + 1;
      let taken = 0;
      for await (const event of watcher.watch({ prefix: "r/", startRevision: next }, stop.signal)) {
        seen.push(event);
        if (++taken === 17) break;
      }
      clearTimeout(timer);
      clearInterval(watchdog);
      watcher.close();
    }
    await writing;
    writer.close();
    // One event per written revision (each write touched exactly one r/ key), in order, each once.
    expect(seen.map((e) => e.revision)).toEqual(written);
    expect(new Set(seen.map(show)).size).toBe(seen.length);
  }, 60_000);

  test("a watcher that stops reading is ended with RESOURCE_EXHAUSTED naming where to resume; others are served meanwhile", async () => {
    const { revision: base } = await client.set({ "slow/seed": "0" });
    const slowClient = new HomeKvClient({ address: server.address });
    const slow = slowClient.watch({ prefix: "slow/", startRevision: base + 1 })[Symbol.asyncIterator]();
    const fastClient = new HomeKvClient({ address: server.address });
    const fastSeen: number[] = [];
    const watchersBefore = (await client.metrics()).watchers;
    const fastStop = new AbortController();
    const fast = (async () => {
      for await (const event of fastClient.watch({ prefix: "slow/", startRevision: base + 1 }, fastStop.signal)) {
        if (fastSeen.at(-1) !== event.revision) fastSeen.push(event.revision);
      }
    })();
    const firstSlow = slow.next(); // the call starts; after this nothing reads it
    const keys = Array.from({ length: 1_000 }, (_, i) => `slow/${i}`);
    const written: number[] = [];
    await waitForWatchers(client, watchersBefore + 2);
    let ended = false;
    for (let round = 0; round < 300 && !ended; round++) {
      const { revision } = await client.set(Object.fromEntries(keys.map((key) => [key, `${round}-${key}`])));
      written.push(revision);
      ended = (await client.metrics()).watchers === watchersBefore + 1;
    }
    expect(ended).toBe(true);
    // Normal clients and the other watcher were served throughout.
    expect(text((await client.get(["slow/7"])).records[0]!.value)).toBe(`${written.length - 1}-slow/7`);
    await waitFor(() => fastSeen.at(-1) === written.at(-1), {
      what: "the other watcher to see the last write",
      timeoutMs: 5_000,
      detail: () => `last seen ${fastSeen.at(-1)}, last written ${written.at(-1)}`,
    });
    expect(fastSeen).toEqual(written);
    fastStop.abort();
    await fast;

    // Reading again: everything written to the stream before the status, then the status.
    const got: number[] = [];
    const first = await firstSlow;
    if (!first.done) got.push(first.value.revision);
    let error: unknown;
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const next = await slow.next();
        if (next.done) break;
        if (got.at(-1) !== next.value.revision) got.push(next.value.revision);
      }
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HomeKvRpcError);
    const rpc = error as HomeKvRpcError;
    expect(Status[rpc.code]).toBe("RESOURCE_EXHAUSTED");
    const resume = Number(/watch again from revision (\d+)/.exec(rpc.details)?.[1]);
    expect(resume).toBe(got.at(-1)! + 1);
    expect(got).toEqual(written.filter((r) => r < resume));
    // Resuming there gets the rest, and nothing twice.
    const rest = await collect(
      slowClient,
      { prefix: "slow/", startRevision: resume },
      1_000 * written.filter((r) => r >= resume).length,
      20_000,
    );
    expect([...new Set(rest.map((e) => e.revision))]).toEqual(written.filter((r) => r >= resume));
    slowClient.close();
    fastClient.close();
  }, 60_000);

  test("metrics: open watches are counted; a watch that ends in an error counts as a rejected command", async () => {
    // The watches of the tests before unregister as their cancellations arrive: wait for that.
    await waitForWatchers(client, 0);
    const before = await client.metrics();
    expect(before.watchers).toBe(0);
    const stop = new AbortController();
    const iterator = client.watch({ key: "m/k" }, stop.signal)[Symbol.asyncIterator]();
    const pending = iterator.next();
    await waitForWatchers(client, before.watchers + 1);
    stop.abort();
    expect((await pending).done).toBe(true);
    await watchError(client, { start: "b", end: "a" });
    const after = await client.metrics();
    expect(after.cmdsRejected).toBe(before.cmdsRejected + 1);
    await waitForWatchers(client, before.watchers);
  });
});

test("a start revision below the retained history is OUT_OF_RANGE naming the oldest one a watch can start from", async () => {
  const server = await startServerProcess(["--history-revisions", "5"]);
  const client = new HomeKvClient({ address: server.address });
  try {
    for (let i = 0; i < 20; i++) await client.set({ [`c/${i % 3}`]: String(i) });
    const { compactedRevision, revision } = await client.metrics();
    expect(compactedRevision).toBe(revision - 5);
    const error = await watchError(client, { prefix: "c/", startRevision: 3 });
    expect(Status[error.code]).toBe("OUT_OF_RANGE");
    expect(error.details).toContain(`the oldest revision a watch can start from is ${compactedRevision + 1}`);
    const events = await collect(client, { prefix: "c/", startRevision: compactedRevision + 1, prevValue: true }, 5);
    expect(events.map((e) => e.revision)).toEqual([16, 17, 18, 19, 20]);
    expect(events.every((e) => e.prevValue !== undefined)).toBe(true);
  } finally {
    client.close();
    expect(await server.stop()).toBe(0);
  }
});

test("after a restart from the data directory, a watch from an old revision replays the history kept in the checkpoint", async () => {
  const data = scratchDir();
  try {
    let server = await startServerProcess(["--data-dir", data.path]);
    let client = new HomeKvClient({ address: server.address });
    const expected: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const { revision } = await client.set({ [`h/${i % 2}`]: `v${i}` });
      expected.push(`${revision}:put:h/${i % 2}=v${i}`);
    }
    const { revision: deleted } = await client.del(["h/0"]);
    expected.push(`${deleted}:delete:h/0`);
    // A watcher open while the server stops is told where to resume.
    const open = watchError(client, { prefix: "h/", startRevision: deleted + 1 });
    await waitForWatchers(client, 1);
    expect(await server.stop("SIGTERM")).toBe(0);
    const stopped = await open;
    expect(Status[stopped.code]).toBe("UNAVAILABLE");
    expect(stopped.details).toContain(`watch again from revision ${deleted + 1}`);
    client.close();

    server = await startServerProcess(["--data-dir", data.path]);
    client = new HomeKvClient({ address: server.address });
    try {
      expect(recoveryLine(server.output()).checkpoint).toBe(7);
      const replay = collect(client, { prefix: "h/", startRevision: 1, prevValue: true }, expected.length + 1);
      const { revision: after } = await client.set({ "h/live": "x" });
      const events = await replay;
      expect(events.map(show)).toEqual([...expected, `${after}:put:h/live=x`]);
      expect(events.map((e) => text(e.prevValue))).toEqual([
        undefined,
        undefined,
        "v1",
        "v2",
        "v3",
        "v4",
        "v6",
        undefined,
      ]);
    } finally {
      client.close();
      expect(await server.stop()).toBe(0);
    }
  } finally {
    data.cleanup();
  }
}, 30_000);

test("a revision over --max-response-bytes goes out in several messages with its revision, in key order, nothing lost", async () => {
  const server = await startServerProcess(["--max-response-bytes", "2000"]);
  const client = new HomeKvClient({ address: server.address });
  const raw = new HomeKvServiceClient(server.address, credentials.createInsecure());
  try {
    const value = "v".repeat(600);
    const keys = ["big/f", "big/a", "big/e", "big/b", "big/d", "big/c"];
    const { revision: setRevision } = await client.set(Object.fromEntries(keys.map((key) => [key, value])));
    const { revision } = await client.del(keys);
    // With previous values each delete event is some 650 bytes: three to a message of 2,000.
    const stream = raw.watch(WatchRequest.fromPartial({ prefix: "big/", startRevision: setRevision, prevValue: true }));
    const messages: WatchResponse[] = [];
    for await (const message of stream as AsyncIterable<WatchResponse>) {
      messages.push(message);
      if (messages.reduce((n, m) => n + m.events.length, 0) === 12) break;
    }
    stream.cancel();
    expect(messages.map((m) => [m.revision, m.events.length])).toEqual([
      [setRevision, 3],
      [setRevision, 3],
      [revision, 3],
      [revision, 3],
    ]);
    const deletes = messages.slice(2).flatMap((m) => m.events);
    expect(deletes.map((e) => e.record!.key)).toEqual([...keys].sort());
    expect(deletes.every((e) => text(e.prevValue) === value)).toBe(true);
    // The server goes on serving, and the stream that ended early unregistered its watcher.
    expect((await client.get(["big/a"])).records[0]!.value).toBeUndefined();
  } finally {
    raw.close();
    client.close();
    expect(await server.stop()).toBe(0);
  }
});
