import { expect } from "bun:test";
import fc from "fast-check";
import { HomeKvError } from "../../../src/errors.ts";
import type {
  ChangeEvent,
  KeyChain,
  MvccStore,
  ScanOptions,
  Snapshot,
  StoreOptions,
} from "../../../src/storage/mvcc/store.ts";
import type { Compare, LogEntry, Command as StoreCommand, TxnOp, WriteOp } from "../../../src/storage/ops.ts";

/**
 * The model of the FLSM model-based tests: random operation sequences (batches, transactions,
 * expiry, compaction, snapshots, GC, restarts) that run against the memory engine, the model, and an
 * FLSM store, and must get the same answers from both. The tests give the FLSM store its levels
 * (stand-ins in memory, or tables on disk), say what a restart and a failing flush are, and may
 * space the revisions out (gaps, as a partition's timestamps will have).
 */

// Byte order and code point order agree on these; the last ones are past U+FFFF and near it.
export const KEYS = ["a", "ab", "b", "c", "é", "z", "\uffee", "\u{1f600}"];
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.uint8Array({ maxLength: 3 });

const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ key: keyArb, value: valueArb }),
  fc.record({ key: keyArb, value: valueArb, expiresAtMs: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ key: keyArb, value: fc.constant(null) }),
);
const writes = fc.uniqueArray(writeOp, { minLength: 1, maxLength: 4, selector: (op) => op.key });
const compare: fc.Arbitrary<Compare> = fc.oneof(
  fc.record({
    key: keyArb,
    target: fc.constant("value" as const),
    op: fc.constantFrom("==", "!=", "<", ">"),
    value: valueArb,
  }),
  fc.record({
    key: keyArb,
    target: fc.constantFrom("mod_revision", "create_revision", "version", "exists"),
    op: fc.constantFrom("==", "!=", "<", ">"),
    number: fc.nat({ max: 6 }),
  }),
);
/** A transaction branch: distinct keys, some read, some written. */
const branch: fc.Arbitrary<TxnOp[]> = fc
  .uniqueArray(fc.tuple(keyArb, fc.boolean(), valueArb), { maxLength: 3, selector: ([key]) => key })
  .map((ops) => ops.map(([key, isGet, value]) => (isGet ? { get: key } : { key, value: value.length ? value : null })));

export type Command =
  | { kind: "write"; ops: WriteOp[] }
  | { kind: "txn"; compares: Compare[]; success: TxnOp[]; failure: TxnOp[] }
  | { kind: "compact"; back: number }
  | { kind: "expire"; key: string; back: number }
  | { kind: "open" }
  | { kind: "snapshotRead"; pick: number; scan: ScanArgs }
  | { kind: "release"; pick: number }
  | { kind: "gc"; maxKeys: number }
  | { kind: "readAt"; offset: number; compares: Compare[] }
  | { kind: "scan"; offset: number; scan: ScanArgs }
  | { kind: "changes"; offset: number; limit: number; start?: string; end?: string }
  | { kind: "settle" }
  | { kind: "failFlushes"; failing: boolean }
  | { kind: "restart" };

type ScanArgs = Omit<ScanOptions, "revision" | "after">;

const scanArgs: fc.Arbitrary<ScanArgs> = fc.record(
  {
    start: keyArb,
    end: keyArb,
    limit: fc.integer({ min: 1, max: 4 }),
    reverse: fc.boolean(),
    visitMax: fc.integer({ min: 1, max: 4 }),
    bytesMax: fc.integer({ min: 1, max: 12 }),
  },
  { requiredKeys: ["limit"] },
);

export const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("write"), ops: writes }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("txn"),
      compares: fc.array(compare, { maxLength: 2 }),
      success: branch,
      failure: branch,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact"), back: fc.nat({ max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire"), key: keyArb, back: fc.nat({ max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("open") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("snapshotRead"), pick: fc.nat(), scan: scanArgs }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("release"), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("gc"), maxKeys: fc.integer({ min: 1, max: 4 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("readAt"),
      offset: fc.nat({ max: 12 }),
      compares: fc.array(compare, { maxLength: 2 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("scan"), offset: fc.nat({ max: 12 }), scan: scanArgs }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        kind: fc.constant("changes"),
        offset: fc.nat({ max: 12 }),
        limit: fc.integer({ min: 1, max: 5 }),
        start: keyArb,
        end: keyArb,
      },
      { requiredKeys: ["kind", "offset", "limit"] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("settle") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("failFlushes"), failing: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart") }) },
);

/** What a store said: a value, or the code of the error it threw. */
export function outcome<T>(run: () => T): { value: T } | { code: string } {
  try {
    return { value: run() };
  } catch (error) {
    if (error instanceof HomeKvError) return { code: error.code };
    throw error;
  }
}

/** A store with what it reported to its observers. */
export interface Observed {
  store: MvccStore;
  snapshots: Snapshot[];
  events: [number, readonly ChangeEvent[]][];
  expiries: [string, number, number][];
}

export interface Engine {
  /** A new, empty store. */
  create(options: StoreOptions): MvccStore;
}

export function observe(engine: Engine, historyRevisions: number): Observed {
  const observed = unobserved();
  observed.store = engine.create(observerOptions(observed, historyRevisions));
  return observed;
}

/** An Observed whose store the caller sets: made with `observerOptions` of it. */
export function unobserved(): Observed {
  return { store: undefined as unknown as MvccStore, snapshots: [], events: [], expiries: [] };
}

/** Store options that report to `observed`. */
export function observerOptions(observed: Observed, historyRevisions: number): StoreOptions {
  return {
    historyRevisions,
    onEvents: (revision, events) => observed.events.push([revision, events]),
    onExpiry: (key, revision, at) => observed.expiries.push([key, revision, at]),
  };
}

/** Every page of a scan, from the first to the one without `next` (bounded). */
export function allPages(scan: (options: ScanOptions) => { records: unknown[]; next?: string }, options: ScanOptions) {
  const records: unknown[] = [];
  let after: string | undefined;
  for (let page = 0; page < 100; page++) {
    const read = scan({ ...options, ...(after === undefined ? {} : { after }) });
    records.push(...read.records);
    if (read.next === undefined) return records;
    after = read.next;
  }
  throw new Error("a scan did not end within 100 pages");
}

/** Both stores dump at a pinned revision, page by page, and a new store of each engine restores the dump. */
export function restart(observed: Observed, engine: Engine, historyRevisions: number): Observed {
  for (const snapshot of observed.snapshots.splice(0)) snapshot.release();
  const { store } = observed;
  const pinned = store.openSnapshot();
  const chains: KeyChain[] = [];
  for (let page = 0; page < 100; page++) {
    const next = store.dumpChains({ after: chains.at(-1)?.key, limit: 2, revision: pinned.revision });
    if (next.length === 0) break;
    chains.push(...next);
  }
  pinned.release();
  const restored = observe(engine, historyRevisions);
  restored.store.restore(store.revision, store.compactedRevision, chains);
  return restored;
}

/** What a test supplies for the commands that depend on its levels. */
export interface StepHooks {
  /** Makes the FLSM store's flushes fail from now on (or succeed again). */
  setFlushesFailing(failing: boolean): void;
  /** Lets the flushes in flight complete. */
  settle(): Promise<void>;
  /** Each command applied to both stores, in order (a test's stand-in for the WAL). */
  applied?(entry: LogEntry): void;
  /** The revision the next command takes after `current`: current + 1 unless the test spaces them out. */
  nextRevision?(current: number): number;
}

/** Gaps between revisions a test cycles through: none (a single node's dense revisions), or some of 1 to 1,000. */
export const gapsArb = fc.oneof(
  fc.constant([1]),
  fc.array(fc.integer({ min: 1, max: 1_000 }), { minLength: 1, maxLength: 4 }),
);

/** `nextRevision` stepping through `gaps` in turn. */
export function spacedBy(gaps: readonly number[]): (current: number) => number {
  let next = 0;
  return (current) => current + gaps[next++ % gaps.length]!;
}

export async function step(model: Observed, flsm: Observed, cmd: Command, hooks: StepHooks): Promise<void> {
  const both = <T>(run: (observed: Observed) => T) =>
    expect(outcome(() => run(flsm))).toEqual(outcome(() => run(model)));
  const { store } = model;
  const apply = (command: StoreCommand) => {
    const entry = { ...command, revision: hooks.nextRevision?.(store.revision) ?? store.revision + 1 } as LogEntry;
    both(({ store }) => store.apply(entry));
    hooks.applied?.(entry);
  };
  // Revisions from one below the compacted one to one past the current one.
  const revisionAt = (offset: number) => Math.min(store.compactedRevision - 1 + offset, store.revision + 1);
  switch (cmd.kind) {
    case "write":
      return apply({ ops: cmd.ops });
    case "txn":
      return apply({ kind: "txn", txn: { compares: cmd.compares, success: cmd.success, failure: cmd.failure } });
    case "compact":
      return apply({ kind: "compact", compactTo: Math.max(0, store.revision - cmd.back) });
    case "expire": {
      const [record] = store.readRecords([cmd.key]);
      return apply({ kind: "expire", keys: [{ key: cmd.key, revision: Math.max(0, record!.modRevision - cmd.back) }] });
    }
    case "open":
      model.snapshots.push(model.store.openSnapshot());
      flsm.snapshots.push(flsm.store.openSnapshot());
      return;
    case "snapshotRead": {
      const at = cmd.pick % Math.max(1, model.snapshots.length);
      if (model.snapshots[at] === undefined) return;
      both(({ snapshots }) => snapshots[at]!.readRecords(KEYS));
      return both(({ snapshots }) => allPages((options) => snapshots[at]!.scan(options), { ...cmd.scan, revision: 0 }));
    }
    case "release": {
      const at = cmd.pick % Math.max(1, model.snapshots.length);
      model.snapshots.splice(at, 1)[0]?.release();
      flsm.snapshots.splice(at, 1)[0]?.release();
      // Releasing twice is harmless.
      return both(({ snapshots }) => snapshots[at - 1]?.release());
    }
    case "gc":
      for (const { store } of [model, flsm])
        expect(store.collectGarbage(cmd.maxKeys).keysVisited).toBeLessThanOrEqual(cmd.maxKeys);
      return;
    case "readAt": {
      const revision = revisionAt(cmd.offset);
      both(({ store }) => store.readRecords(KEYS, revision));
      both(({ store }) => store.valueBytes(KEYS, revision));
      return both(({ store }) => store.evaluate(cmd.compares, revision));
    }
    case "scan": {
      const revision = revisionAt(cmd.offset);
      return both(({ store }) => allPages((options) => store.scan(options), { ...cmd.scan, revision }));
    }
    case "changes": {
      const after = Math.max(0, revisionAt(cmd.offset));
      return both(({ store }) => store.changes({ after, limit: cmd.limit, start: cmd.start, end: cmd.end }));
    }
    case "settle":
      return hooks.settle();
    case "failFlushes":
      return hooks.setFlushesFailing(cmd.failing);
    case "restart":
      throw new Error("restart is run by the caller: it replaces both stores");
  }
}

export function expectSameState(model: Observed, flsm: Observed): void {
  const {
    versions: _m,
    gcRuns: _a,
    gcVersionsCollected: _b,
    versionsVisited: _c,
    packedBytes: _d,
    engine: _e,
    ...expected
  } = model.store.stats();
  expect(flsm.store.stats()).toMatchObject(expected);
  expect(flsm.events).toEqual(model.events);
  expect(flsm.expiries).toEqual(model.expiries);
}
