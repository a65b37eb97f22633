import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { createDatabase, type Database, type StoreSettings } from "../../src/storage/database.ts";
import { type DurableOptions, openDurableDatabase } from "../../src/storage/durable-database.ts";
import type { ChangeEvent } from "../../src/storage/mvcc/store.ts";
import type { Command, WriteOp } from "../../src/storage/ops.ts";
import { createExpirySweeper, EXPIRY_TIMER_DELAY_MS_MAX } from "../../src/storage/ttl/expiry-sweeper.ts";
import { bytes, text } from "../helpers/bytes.ts";

const T0 = 1_700_000_000_000;
const put = (key: string, value: string, expiresAtMs?: number): WriteOp => ({
  key,
  value: bytes(value),
  expiresAtMs,
});

/** Lets promises and a few event-loop turns run (a WAL commit on the memory file system takes some). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A wall clock and timers that move only when told to. */
function fakeTime(startMs = T0) {
  let nowMs = startMs;
  let nextId = 1;
  const timers = new Map<number, { atMs: number; fire: () => void }>();
  let fired = 0;
  return {
    now: () => nowMs,
    setTimer(fire: () => void, delayMs: number): unknown {
      expect(delayMs).toBeGreaterThanOrEqual(0);
      expect(delayMs).toBeLessThanOrEqual(EXPIRY_TIMER_DELAY_MS_MAX);
      const id = nextId++;
      timers.set(id, { atMs: nowMs + delayMs, fire });
      return id;
    },
    clearTimer(handle: unknown) {
      timers.delete(handle as number);
    },
    /** Timers set now. */
    get armed() {
      return timers.size;
    },
    get fired() {
      return fired;
    },
    /** Moves the clock by `ms`, firing each timer due on the way at its time, then letting its work finish. */
    async advance(ms: number): Promise<void> {
      const targetMs = nowMs + ms;
      await flush();
      for (let steps = 0; ; steps++) {
        if (steps > 10_000) throw new Error("timers keep firing: no progress");
        const [id, timer] =
          [...timers].filter(([, t]) => t.atMs <= targetMs).sort(([, a], [, b]) => a.atMs - b.atMs)[0] ?? [];
        if (timer === undefined) break;
        timers.delete(id!);
        nowMs = Math.max(nowMs, timer.atMs);
        fired++;
        timer.fire();
        await flush();
      }
      nowMs = targetMs;
    },
    /** Moves the clock without firing anything (time passing while a server is down). */
    jump(ms: number) {
      nowMs += ms;
    },
  };
}

type FakeTime = ReturnType<typeof fakeTime>;

const timersOf = (time: FakeTime) => ({ now: time.now, setTimer: time.setTimer, clearTimer: time.clearTimer });

/** An in-memory database on fake time that records every change it commits. */
function memoryDb(time: FakeTime, settings: StoreSettings = {}) {
  const events: ChangeEvent[] = [];
  const db = createDatabase({
    historyRevisions: Infinity,
    onEvents: (_revision, changes) => events.push(...changes),
    ...settings,
    expiry: { ...timersOf(time), ...settings.expiry },
  });
  return { db, events };
}

function value(db: Database, key: string, revision?: number): string | undefined {
  return text(db.read([key], revision).records[0]!.value);
}

describe("expiry through a database", () => {
  test("a key expires at its deadline with a committed delete at a new revision", async () => {
    const time = fakeTime();
    const { db, events } = memoryDb(time);
    const { revision: written } = await db.write([put("session", "s1", T0 + 1_000), put("plain", "p")]);
    await time.advance(999);
    expect(value(db, "session")).toBe("s1");
    expect(db.revision).toBe(written);
    await time.advance(1);
    expect(value(db, "session")).toBeUndefined();
    expect(value(db, "plain")).toBe("p");
    expect(db.revision).toBe(written + 1);
    // A committed delete: readers at the old revision still see the value; the change went out as an event.
    expect(value(db, "session", written)).toBe("s1");
    expect(events.at(-1)).toEqual({
      key: "session",
      value: null,
      revision: written + 1,
      previous: bytes("s1"),
    });
    expect(time.armed).toBe(0);
    await db.close();
  });

  test("an onExpiry given in the options still hears every TTL", async () => {
    const time = fakeTime();
    const heard: [string, number, number][] = [];
    const { db } = memoryDb(time, { onExpiry: (key, revision, atMs) => heard.push([key, revision, atMs]) });
    await db.write([put("k", "v", T0 + 50)]);
    expect(heard).toEqual([["k", 1, T0 + 50]]);
    await time.advance(50);
    expect(value(db, "k")).toBeUndefined();
    await db.close();
  });

  test("a key rewritten (without a TTL) before its deadline is not deleted, and no command is spent", async () => {
    const time = fakeTime();
    const { db } = memoryDb(time);
    await db.write([put("k", "old", T0 + 1_000)]);
    await time.advance(500);
    const { revision } = await db.write([put("k", "new")]);
    await time.advance(5_000);
    expect(value(db, "k")).toBe("new");
    expect(db.revision).toBe(revision);
    await db.close();
  });

  test("a key deleted and written again before its deadline is left alone", async () => {
    const time = fakeTime();
    const { db } = memoryDb(time);
    await db.write([put("k", "first", T0 + 1_000)]);
    await db.write([{ key: "k", value: null }]);
    const { revision } = await db.write([put("k", "second")]);
    await time.advance(2_000);
    expect(value(db, "k")).toBe("second");
    expect(db.revision).toBe(revision);
    await db.close();
  });

  test("a key rewritten with a new TTL expires at the new deadline", async () => {
    const time = fakeTime();
    const { db } = memoryDb(time);
    await db.write([put("k", "v1", T0 + 1_000)]);
    await time.advance(500);
    const { revision } = await db.write([put("k", "v2", T0 + 2_500)]);
    await time.advance(1_999); // T0 + 2499: past the first deadline, before the second
    expect(value(db, "k")).toBe("v2");
    expect(db.revision).toBe(revision);
    await time.advance(1);
    expect(value(db, "k")).toBeUndefined();
    expect(db.revision).toBe(revision + 1);
    await db.close();
  });

  test("a shorter TTL written later fires first (the timer is re-armed for the earliest deadline)", async () => {
    const time = fakeTime();
    const { db } = memoryDb(time);
    await db.write([put("long", "l", T0 + 10_000)]);
    await db.write([put("short", "s", T0 + 100)]);
    expect(time.armed).toBe(1);
    await time.advance(100);
    expect(value(db, "short")).toBeUndefined();
    expect(value(db, "long")).toBe("l");
    await time.advance(9_900);
    expect(value(db, "long")).toBeUndefined();
    await db.close();
  });

  test("many keys expire in bounded batches, one command each", async () => {
    const time = fakeTime();
    const { db, events } = memoryDb(time, { expiry: { batchMax: 100 } });
    const keys = Array.from({ length: 1_050 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
    for (let i = 0; i < keys.length; i += 500)
      await db.write(keys.slice(i, i + 500).map((key) => put(key, "v", T0 + 1_000 + (i % 7))));
    const before = db.revision;
    events.length = 0;
    await time.advance(2_000);
    expect(db.stats().keys).toBe(0);
    expect(db.revision).toBe(before + 11); // ceil(1050 / 100) commands
    const perRevision = new Map<number, number>();
    for (const event of events) {
      expect(event.value).toBeNull();
      perRevision.set(event.revision, (perRevision.get(event.revision) ?? 0) + 1);
    }
    expect(events.length).toBe(1_050);
    expect(Math.max(...perRevision.values())).toBe(100);
    await db.close();
  });

  test("close stops the sweeper: no timer is left and nothing is proposed after", async () => {
    const time = fakeTime();
    const { db } = memoryDb(time);
    await db.write([put("k", "v", T0 + 1_000)]);
    expect(time.armed).toBe(1);
    await db.close();
    expect(time.armed).toBe(0);
    await time.advance(2_000);
    expect(time.fired).toBe(0);
  });
});

describe("expiry across restarts of a durable database", () => {
  const DIR = "/data/homekv";
  const open = (fs: MemoryFileSystem, time: FakeTime, options: Partial<DurableOptions> = {}) =>
    openDurableDatabase({ fs, dir: DIR, isAlive: () => false, expiry: timersOf(time), ...options });

  for (const restart of ["clean close (checkpoint)", "crash (WAL replay)"] as const) {
    test(`pending TTLs still expire after a ${restart}; those past due while down expire at once`, async () => {
      const time = fakeTime();
      let fs = new MemoryFileSystem();
      const first = await open(fs, time);
      await first.write([put("soon", "1", T0 + 1_000), put("later", "2", T0 + 5_000), put("kept", "3")]);
      await first.write([put("rewritten", "old", T0 + 1_000)]);
      await first.write([put("rewritten", "new")]);
      const lastRevision = first.revision;
      // After a crash the next start reads a copy of what was synced; the old instance then closes on the old disk.
      if (restart === "crash (WAL replay)") {
        fs.crash();
        fs = fs.image();
      }
      await first.close();

      time.jump(2_000); // down past the first deadline
      const lines: string[] = [];
      const second = await open(fs, time, { log: (line) => lines.push(line) });
      // The crash's start replays the WAL: no checkpoint of the old instance's close reached its disk.
      expect(lines.find((line) => line.startsWith("recovered"))).toEndWith(
        restart === "crash (WAL replay)"
          ? "checkpoint none, 3 WAL records replayed"
          : "checkpoint 3, 0 WAL records replayed",
      );
      expect(second.revision).toBe(lastRevision);
      expect(value(second, "soon")).toBe("1"); // not yet: only once the timer runs
      await time.advance(0);
      expect(value(second, "soon")).toBeUndefined();
      expect(second.revision).toBe(lastRevision + 1);
      expect(value(second, "rewritten")).toBe("new");
      expect(value(second, "later")).toBe("2");
      await time.advance(2_999); // T0 + 4999
      expect(value(second, "later")).toBe("2");
      await time.advance(1);
      expect(value(second, "later")).toBeUndefined();
      expect(value(second, "kept")).toBe("3");
      expect(second.revision).toBe(lastRevision + 2);
      await second.close();

      // The expiries are in the log like any write: a third start sees them.
      const third = await open(fs, time);
      expect(third.revision).toBe(lastRevision + 2);
      expect(value(third, "soon")).toBeUndefined();
      expect(value(third, "later")).toBeUndefined();
      await third.close();
    });
  }
});

describe("createExpirySweeper on its own", () => {
  function sweeper(time: FakeTime, options: { batchMax?: number; fail?: () => unknown } = {}) {
    const proposed: Command[] = [];
    const errors: unknown[] = [];
    const s = createExpirySweeper({
      ...timersOf(time),
      batchMax: options.batchMax,
      retryDelayMs: 1_000,
      onError: (error) => errors.push(error),
      propose: (command) => {
        const failure = options.fail?.();
        if (failure) return Promise.reject(failure);
        proposed.push(command);
        return Promise.resolve();
      },
    });
    return { s, proposed, errors };
  }

  test("nothing is proposed before start; keys past due by then go in the first command", async () => {
    const time = fakeTime();
    const { s, proposed } = sweeper(time);
    s.onExpiry("a", 3, T0 - 10);
    s.onExpiry("b", 4, T0 + 10);
    await time.advance(100);
    expect(proposed).toEqual([]);
    expect(time.armed).toBe(0);
    s.start();
    await time.advance(0);
    expect(proposed).toEqual([
      {
        kind: "expire",
        keys: [
          { key: "a", revision: 3 },
          { key: "b", revision: 4 },
        ],
      },
    ]);
    expect(s.pending).toBe(0);
  });

  test("one timer at a time, for the earliest deadline; a far deadline sleeps at most the cap", async () => {
    const time = fakeTime();
    const { s, proposed } = sweeper(time);
    s.start();
    s.onExpiry("year", 1, T0 + 365 * 24 * 3600 * 1000);
    expect(time.armed).toBe(1);
    s.onExpiry("minute", 2, T0 + 60_000);
    s.onExpiry("hour", 3, T0 + 3_600_000);
    expect(time.armed).toBe(1);
    await time.advance(3_600_000);
    expect(proposed.map((c) => (c.kind === "expire" ? c.keys.map((k) => k.key) : []))).toEqual([["minute"], ["hour"]]);
    expect(s.pending).toBe(1);
    expect(time.armed).toBe(1);
  });

  test("a failed proposal is reported and retried after the delay; stop ends it all", async () => {
    const time = fakeTime();
    let failures = 2;
    const { s, proposed, errors } = sweeper(time, {
      fail: () => (failures-- > 0 ? new HomeKvError("E_DISK", "disk full") : undefined),
    });
    s.start();
    s.onExpiry("k", 7, T0 + 100);
    await time.advance(100);
    expect(errors).toHaveLength(1);
    expect(proposed).toEqual([]);
    expect(s.pending).toBe(1);
    await time.advance(999);
    expect(errors).toHaveLength(1); // still waiting out the delay
    await time.advance(1);
    expect(errors).toHaveLength(2);
    await time.advance(1_000);
    expect(proposed).toEqual([{ kind: "expire", keys: [{ key: "k", revision: 7 }] }]);
    s.onExpiry("j", 8, T0 + 5_000);
    s.stop();
    expect(time.armed).toBe(0);
    s.onExpiry("i", 9, T0 + 5_000);
    await time.advance(10_000);
    expect(proposed).toHaveLength(1);
  });

  test("batches hold at most batchMax keys, in deadline order", async () => {
    const time = fakeTime();
    const { s, proposed } = sweeper(time, { batchMax: 3 });
    for (let i = 0; i < 8; i++) s.onExpiry(`k${i}`, i + 1, T0 - i);
    s.start();
    await time.advance(0);
    const batches = proposed.map((c) => (c.kind === "expire" ? c.keys.map((k) => k.key) : []));
    expect(batches).toEqual([
      ["k7", "k6", "k5"],
      ["k4", "k3", "k2"],
      ["k1", "k0"],
    ]);
  });
});
