import { expect, test } from "bun:test";
import fc from "fast-check";
import { createFlsmStore } from "../../src/storage/flsm/flsm-store.ts";
import {
  type ChangeEvent,
  createMvccStore,
  type HistoryChange,
  type KeyChain,
  type MvccStore,
  type Snapshot,
  type StoreOptions,
} from "../../src/storage/mvcc/store.ts";
import type { ApplyResult, Command, KeyRecord, LateEntry, WriteOp } from "../../src/storage/ops.ts";
import { MemoryLevels } from "./flsm/memory-levels.ts";
import { allPages, outcome } from "./flsm/store-model.ts";

/**
 * Model-based test of both engines fed revisions with gaps, as a partition's timestamps will be:
 * commands at random increasing revisions (gaps of 1 to 1,000), and reads, scans, changes, snapshots,
 * compactions, TTL expiries and checkpoint restores at revisions picked where a gap shows a mistake:
 * at a command, one either side of it, inside a gap, at and below the compacted revision, past the
 * current one. The model is a list of (revision, key → record) states: a read at R sees the last
 * state at or below R, whether or not a command is at R.
 *
 * Mixed in: late commits (`applyLate`, Percolator's secondaries) at such revisions at or below the
 * current one, mostly on keys with no version at or above them (taken: the model inserts them into
 * every state from theirs on), sometimes on any key or at a compacted revision (refused, nothing
 * changes). Snapshots pinned above a late commit see it once it is in (store-types.ts says why).
 */

const KEYS = ["a", "b", "c", "d"];
const keyArb = fc.constantFrom(...KEYS);
// Narrow gaps as often as wide ones: a window of history then spans several commands.
const gapArb = fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 1_000 }));
const writeOp: fc.Arbitrary<WriteOp> = fc.oneof(
  fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 3 }) }),
  fc.record({ key: keyArb, value: fc.uint8Array({ maxLength: 3 }), expiresAtMs: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ key: keyArb, value: fc.constant(null) }),
);

type Step =
  | { kind: "write"; gap: number; ops: WriteOp[] }
  /** If `key` exists: write it, then get it and `other`; otherwise get it. */
  | { kind: "txn"; gap: number; key: string; write: WriteOp; other: string }
  | { kind: "compact"; gap: number; pick: number }
  /**
   * Writes committed late at a picked revision at or below the current one; `free`: only the keys
   * of `ops` with no version at or above it (what a lock guarantees), otherwise all of them.
   */
  | { kind: "late"; pick: number; ops: WriteOp[]; free: boolean }
  /**
   * Expires `key` as written at its newest version's revision (`exact`) or a picked one: only its
   * newest live version's revision deletes it.
   */
  | { kind: "expire"; gap: number; key: string; exact: boolean; pick: number }
  | { kind: "read"; pick: number; limit: number }
  | { kind: "open" }
  | { kind: "snapshotRead"; pick: number }
  | { kind: "release"; pick: number }
  | { kind: "gc"; maxKeys: number }
  /**
   * A checkpoint of the store restored into a new one, at its revision or in a gap above it; with
   * `late`, a late commit lands while the checkpoint is copied, and is applied again after the
   * restore (as the log after the checkpoint's position would).
   */
  | { kind: "restore"; gap: number; late?: { pick: number; ops: WriteOp[]; free: true } };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("write"),
      gap: gapArb,
      ops: fc.uniqueArray(writeOp, { minLength: 1, maxLength: 3, selector: (op) => op.key }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("txn"), gap: gapArb, key: keyArb, write: writeOp, other: keyArb }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("compact"), gap: gapArb, pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("late"),
      pick: fc.nat(),
      ops: fc.uniqueArray(writeOp, { minLength: 1, maxLength: 3, selector: (op) => op.key }),
      free: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("expire"),
      gap: gapArb,
      key: keyArb,
      exact: fc.boolean(),
      pick: fc.nat(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("read"), pick: fc.nat(), limit: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("open") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("snapshotRead"), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release"), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("gc"), maxKeys: fc.integer({ min: 1, max: 4 }) }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        kind: fc.constant("restore"),
        gap: fc.constantFrom(0, 0, 1, 17, 900),
        late: fc.record({
          pick: fc.nat(),
          ops: fc.uniqueArray(writeOp, { minLength: 1, maxLength: 3, selector: (op) => op.key }),
          free: fc.constant(true as const),
        }),
      },
      { requiredKeys: ["kind", "gap"] },
    ),
  },
);

const missing = (key: string): KeyRecord => ({ key, value: undefined, modRevision: 0, createRevision: 0, version: 0 });
/** The live records of a state in key order: what a scan of everything returns. */
const inKeyOrder = (records: ReadonlyMap<string, KeyRecord>) =>
  [...records.values()].sort((a, b) => (a.key < b.key ? -1 : 1));

/** Writes `op` at `revision` into `records`, its change into `made`; whether it deleted a live key. */
function writeRecord(
  records: Map<string, KeyRecord>,
  made: HistoryChange[],
  { key, value, expiresAtMs }: WriteOp,
  revision: number,
): boolean {
  const previous = records.get(key);
  if (value === null) {
    if (previous === undefined) return false;
    records.delete(key);
    made.push({ key, value, revision, previous: previous.value, createRevision: 0, version: 0 });
    return true;
  }
  const record: KeyRecord = {
    key,
    value,
    modRevision: revision,
    createRevision: previous?.createRevision ?? revision,
    version: (previous?.version ?? 0) + 1,
    ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
  };
  records.set(key, record);
  made.push({
    key,
    value,
    revision,
    previous: previous?.value,
    createRevision: record.createRevision,
    version: record.version,
  });
  return false;
}

const byRevisionThenKey = (a: HistoryChange, b: HistoryChange) =>
  a.revision - b.revision || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The state after the command at `revision`: every live key's record. */
interface State {
  revision: number;
  records: ReadonlyMap<string, KeyRecord>;
}

class Model {
  readonly states: State[] = [{ revision: 0, records: new Map() }];
  /** Every change, by revision (each command's in key order, as `changes` gives them). */
  readonly changes: HistoryChange[] = [];
  /** Above the last command's revision after a restore in a gap. */
  current = 0;
  compacted = 0;

  constructor(private readonly historyRevisions: number) {}

  /** The records a read at `revision` sees: the last state at or below it. */
  at(revision: number): ReadonlyMap<string, KeyRecord> {
    for (let i = this.states.length - 1; i >= 0; i--)
      if (this.states[i]!.revision <= revision) return this.states[i]!.records;
    throw new Error(`no state at ${revision}`);
  }

  /** What a read at `revision` is refused with, if it is. */
  refusal(revision: number): string | undefined {
    if (revision > this.current) return "E_FUTURE_REVISION";
    return revision < this.compacted ? "E_COMPACTED" : undefined;
  }

  /**
   * Revisions where reads go wrong first: the compacted revision and one below, the current one and
   * past it, and around each command not wholly compacted: its revision, one either side, the middle
   * and the end of the gap after it; `pick` takes one.
   */
  revision(pick: number): number {
    const candidates = this.revisions();
    return candidates[pick % candidates.length]!;
  }

  /** The revisions `revision` picks from (none negative). */
  revisions(): number[] {
    const candidates = [this.compacted, this.compacted - 1, this.current, this.current + 1, this.current + 500];
    for (const [i, { revision }] of this.states.entries()) {
      const next = this.states[i + 1]?.revision ?? this.current + 1;
      if (next <= this.compacted) continue;
      candidates.push(revision, revision - 1, revision + 1, revision + Math.floor((next - revision) / 2), next - 1);
    }
    return candidates.map((revision) => Math.max(0, revision));
  }

  /** Applies `command` at `revision`, as the store must: its result and the events it reports. */
  apply(revision: number, command: Command): { result: ApplyResult; events: ChangeEvent[] } {
    this.compacted = Math.max(this.compacted, revision - this.historyRevisions);
    const records = new Map(this.states.at(-1)!.records);
    const made: HistoryChange[] = [];
    let deleted = 0;
    const write = (op: WriteOp) => {
      if (writeRecord(records, made, op, revision)) deleted++;
    };
    let result: ApplyResult = { revision, deleted: 0 };
    switch (command.kind) {
      case undefined:
      case "batch":
        for (const op of command.ops) write(op);
        result = { revision, deleted };
        break;
      case "txn": {
        const { compares, success, failure } = command.txn;
        const succeeded = compares.every((clause) => records.has(clause.key));
        const reads: KeyRecord[] = [];
        for (const op of succeeded ? success : failure) {
          if ("get" in op) reads.push(records.get(op.get) ?? missing(op.get));
          else write(op);
        }
        result = { revision, deleted, succeeded, reads };
        break;
      }
      case "compact":
        this.compacted = Math.max(this.compacted, Math.min(command.compactTo, revision));
        break;
      case "expire":
        for (const { key, revision: written } of command.keys)
          if (records.get(key)?.modRevision === written) write({ key, value: null });
        result = { revision, deleted };
        break;
    }
    this.states.push({ revision, records });
    this.current = revision;
    // Events go out in the command's order; changes are read back in key order.
    const events = made.map(({ key, value, revision, previous }) => ({ key, value, revision, previous }));
    this.changes.push(...made.sort(byRevisionThenKey));
    return { result, events };
  }

  /** `key@revision` of every put committed late (the test counts their TTL expiries). */
  readonly lateWrites = new Set<string>();

  /** The revision of `key`'s newest change, a delete's too (0: none). */
  newestChange(key: string): number {
    return this.changes.findLast((change) => change.key === key)?.revision ?? 0;
  }

  /**
   * Applies writes committed late at `revision` (at or below the current one), as the store must:
   * refused when it is compacted or a key has a change at or above it; otherwise every state from
   * `revision` on (one made there if none is) has the keys as the writes left them at `revision`.
   */
  late(revision: number, ops: readonly WriteOp[]): { value: ApplyResult } | { code: string } {
    if (revision <= this.compacted) return { code: "E_COMPACTED" };
    if (ops.some(({ key }) => this.newestChange(key) >= revision)) return { code: "E_INVALID" };
    const written = new Map(this.at(revision - 1));
    const made: HistoryChange[] = [];
    let deleted = 0;
    for (const op of ops) if (writeRecord(written, made, op, revision)) deleted++;
    const at = this.states.findLastIndex((state) => state.revision <= revision);
    if (this.states[at]!.revision < revision)
      this.states.splice(at + 1, 0, { revision, records: this.states[at]!.records });
    for (const [i, state] of this.states.entries()) {
      if (state.revision < revision) continue;
      const records = new Map(state.records);
      for (const { key } of ops) {
        const record = written.get(key);
        if (record === undefined) records.delete(key);
        else records.set(key, record);
      }
      this.states[i] = { revision: state.revision, records };
    }
    this.changes.push(...made);
    this.changes.sort(byRevisionThenKey);
    for (const { key, value } of ops) if (value !== null) this.lateWrites.add(`${key}@${revision}`);
    return { value: { revision, deleted } };
  }

  /** What `changes({ after, limit })` must give: whole revisions, cut once `limit` changes are passed. */
  changesAfter(after: number, limit: number): { changes: HistoryChange[]; through: number } {
    const all = this.changes.filter((change) => change.revision > after);
    if (all.length <= limit) return { changes: all, through: this.current };
    const through = all[limit - 1]!.revision;
    return { changes: all.filter((change) => change.revision <= through), through };
  }
}

/** A store under test with what it reported. */
interface Subject {
  store: MvccStore;
  events: [number, ChangeEvent[]][];
  snapshots: Snapshot[];
}

interface Engine {
  name: string;
  create(options: StoreOptions): MvccStore;
}

const ENGINES: Engine[] = [
  { name: "memory", create: (options) => createMvccStore(options) },
  // Chains ringed after two versions: reads at old revisions take the ring's binary search.
  { name: "memory, rings", create: (options) => createMvccStore({ ...options, tuning: { ringMin: 2 } }) },
  // Every packed structure at its smallest: slabs moved, leaves split and merged, rows reused.
  {
    name: "memory, tiny layout",
    create: (options) =>
      createMvccStore({ ...options, tuning: { slabBytes: 64, leafMax: 2, chunkBits: 2, ringMin: 1 } }),
  },
  // A memtable frozen at every command, flushed to runs (stand-in levels) a turn later.
  {
    name: "flsm, flushed",
    create: (options) => {
      const levels = new MemoryLevels();
      return createFlsmStore({ ...options, memtableBytes: 1, levels, flush: levels.flush, report: () => {} });
    },
  },
  { name: "flsm, one memtable", create: (options) => createFlsmStore(options) },
];

function open(engine: Engine, historyRevisions: number): Subject {
  const events: [number, ChangeEvent[]][] = [];
  const store = engine.create({
    historyRevisions,
    onEvents: (revision, made) => events.push([revision, [...made]]),
  });
  return { store, events, snapshots: [] };
}

/**
 * A checkpoint of `subject` (dumped page by page through a snapshot) restored at `revision` into a
 * new store; `midDump` runs after its first page.
 */
function restored(
  subject: Subject,
  engine: Engine,
  historyRevisions: number,
  revision: number,
  midDump?: (store: MvccStore) => void,
): Subject {
  for (const snapshot of subject.snapshots.splice(0)) snapshot.release();
  const pinned = subject.store.openSnapshot();
  const chains: KeyChain[] = [];
  for (let page = 0; page < KEYS.length + 1; page++) {
    const next = pinned.chains({ after: chains.at(-1)?.key, limit: 2 });
    if (page === 0) midDump?.(subject.store);
    if (next.length === 0) break;
    chains.push(...next);
  }
  pinned.release();
  const fresh = open(engine, historyRevisions);
  fresh.store.restore(revision, subject.store.compactedRevision, chains);
  return fresh;
}

/** Everything a read at `revision` returns, or the code it is refused with, from the store or from the model. */
function readAll(store: MvccStore, revision: number, limit: number) {
  return outcome(() => ({
    records: store.readRecords(KEYS, revision),
    bytes: store.valueBytes(KEYS, revision),
    exists: store.evaluate([{ key: "a", target: "exists", op: "==", number: 1 }], revision),
    forward: allPages((options) => store.scan(options), { limit, revision }),
    backward: allPages((options) => store.scan(options), { limit, revision, reverse: true }),
  }));
}

function expectedRead(model: Model, revision: number) {
  const refusal = model.refusal(revision);
  if (refusal !== undefined) return { code: refusal };
  const records = model.at(revision);
  const live = inKeyOrder(records);
  return {
    value: {
      records: KEYS.map((key) => records.get(key) ?? missing(key)),
      bytes: KEYS.map((key) => records.get(key)?.value?.byteLength ?? 0),
      exists: records.has("a"),
      forward: live,
      backward: [...live].reverse(),
    },
  };
}

/**
 * Where and what a late step commits: a revision picked at or below the current one (free: above
 * the compacted one, and only the keys with no version at or above it: what a lock guarantees).
 */
function lateCommitOf(
  model: Model,
  { pick, ops, free }: { pick: number; ops: WriteOp[]; free: boolean },
): LateEntry | undefined {
  const candidates = free ? model.revisions().filter((revision) => revision > model.compacted) : model.revisions();
  const revision = candidates[pick % Math.max(1, candidates.length)];
  // applyLate's revision is at or below the current one (above it: apply)
  if (revision === undefined || revision > model.current) return undefined;
  const written = free ? ops.filter(({ key }) => model.newestChange(key) < revision) : ops;
  return written.length === 0 ? undefined : { revision, ops: written };
}

function commandOf(step: Step, model: Model): Command | undefined {
  switch (step.kind) {
    case "write":
      return { ops: step.ops };
    case "txn":
      return {
        kind: "txn",
        txn: {
          compares: [{ key: step.key, target: "exists", op: "==", number: 1 }],
          success: [
            { ...step.write, key: step.key },
            { get: step.key },
            ...(step.other === step.key ? [] : [{ get: step.other }]),
          ],
          failure: [{ get: step.key }],
        },
      };
    case "compact":
      return { kind: "compact", compactTo: model.revision(step.pick) };
    case "expire": {
      const written = step.exact ? model.at(model.current).get(step.key)?.modRevision : undefined;
      return { kind: "expire", keys: [{ key: step.key, revision: written ?? model.revision(step.pick) }] };
    }
    default:
      return undefined;
  }
}

test("both engines fed revisions with gaps answer as a list of states does", async () => {
  const reached = {
    gapReads: 0,
    gapCompactions: 0,
    expired: 0,
    gapRestores: 0,
    lateInGap: 0,
    lateAtCommand: 0,
    lateUnderSnapshot: 0,
    lateCompacted: 0,
    lateOverNewer: 0,
    lateExpired: 0,
    lateMidDump: 0,
  };
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(0, 1, 40, 1_500, Number.POSITIVE_INFINITY),
      fc.array(stepArb, { maxLength: 40, size: "max" }),
      async (historyRevisions, steps) => {
        const model = new Model(historyRevisions);
        let subjects = ENGINES.map((engine) => open(engine, historyRevisions));
        const isGap = (revision: number) => !model.states.some((state) => state.revision === revision);
        for (const step of steps) {
          const command = commandOf(step, model);
          if (command !== undefined && "gap" in step) {
            const revision = model.current + step.gap;
            if (command.kind === "compact" && isGap(Math.min(command.compactTo, revision))) reached.gapCompactions++;
            const { result, events } = model.apply(revision, command);
            if (command.kind === "expire" && result.deleted > 0) {
              reached.expired++;
              if (command.keys.some(({ key, revision }) => model.lateWrites.has(`${key}@${revision}`)))
                reached.lateExpired++;
            }
            for (const subject of subjects) {
              const before = subject.events.length;
              expect(subject.store.apply({ ...command, revision })).toEqual(result);
              expect(subject.events.slice(before)).toEqual(events.length > 0 ? [[revision, events]] : []);
            }
          }
          switch (step.kind) {
            case "late": {
              const late = lateCommitOf(model, step);
              if (late === undefined) break;
              const { revision, ops } = late;
              const inGap = isGap(revision);
              const expected = model.late(revision, ops);
              if ("code" in expected) {
                if (expected.code === "E_COMPACTED") reached.lateCompacted++;
                else reached.lateOverNewer++;
              } else {
                if (inGap) reached.lateInGap++;
                else reached.lateAtCommand++;
                if (subjects[0]!.snapshots.some((snapshot) => snapshot.revision >= revision))
                  reached.lateUnderSnapshot++;
              }
              for (const subject of subjects) {
                const before = subject.events.length;
                expect(outcome(() => subject.store.applyLate(late))).toEqual(expected);
                expect(subject.events.length).toBe(before); // late commits go to no watcher (store-types.ts)
              }
              break;
            }
            case "read": {
              const revision = model.revision(step.pick);
              if (isGap(revision) && model.refusal(revision) === undefined) reached.gapReads++;
              const expected = model.changesAfter(revision, step.limit);
              for (const { store } of subjects) {
                expect(readAll(store, revision, step.limit)).toEqual(expectedRead(model, revision));
                expect(outcome(() => store.changes({ after: revision, limit: step.limit }))).toEqual(
                  revision < model.compacted ? { code: "E_COMPACTED" } : { value: expected },
                );
              }
              break;
            }
            case "open":
              for (const subject of subjects) subject.snapshots.push(subject.store.openSnapshot());
              break;
            case "snapshotRead":
              for (const { snapshots } of subjects) {
                const snapshot = snapshots[step.pick % Math.max(1, snapshots.length)];
                if (snapshot === undefined) continue;
                const records = model.at(snapshot.revision);
                expect(snapshot.readRecords(KEYS)).toEqual(KEYS.map((key) => records.get(key) ?? missing(key)));
                expect(allPages((options) => snapshot.scan(options), { limit: 2, revision: 0 })).toEqual(
                  inKeyOrder(records),
                );
              }
              break;
            case "release":
              for (const { snapshots } of subjects)
                snapshots.splice(step.pick % Math.max(1, snapshots.length), 1)[0]?.release();
              break;
            case "gc":
              for (const { store } of subjects) store.collectGarbage(step.maxKeys);
              break;
            case "restore": {
              const revision = model.current + step.gap;
              if (step.gap > 0) reached.gapRestores++;
              // A late commit that lands while the checkpoint is copied is left out of it, and taken
              // again by the restored store (as the log after the checkpoint's position would): once
              // in the model.
              const late = step.late && lateCommitOf(model, step.late);
              if (late === undefined) {
                subjects = subjects.map((subject, i) => restored(subject, ENGINES[i]!, historyRevisions, revision));
              } else {
                const expected = model.late(late.revision, late.ops);
                if ("value" in expected) reached.lateMidDump++;
                const commit = (store: MvccStore) => expect(outcome(() => store.applyLate(late))).toEqual(expected);
                subjects = subjects.map((subject, i) =>
                  restored(subject, ENGINES[i]!, historyRevisions, revision, commit),
                );
                for (const { store } of subjects) commit(store);
              }
              model.current = revision;
              break;
            }
          }
          for (const { store } of subjects) {
            expect(store.revision).toBe(model.current);
            expect(store.compactedRevision).toBe(model.compacted);
          }
        }
        // Flushes in flight complete (the stand-in levels take them in a later turn); reads see the same.
        await new Promise((resolve) => setImmediate(resolve));
        for (const { store } of subjects)
          expect(readAll(store, model.current, 2)).toEqual(expectedRead(model, model.current));
      },
    ),
    { numRuns: 500 },
  );
  // The runs reached what they are for.
  expect(reached.gapReads).toBeGreaterThan(300);
  expect(reached.gapCompactions).toBeGreaterThan(100);
  expect(reached.expired).toBeGreaterThan(30);
  expect(reached.gapRestores).toBeGreaterThan(60);
  expect(reached.lateInGap).toBeGreaterThan(100);
  expect(reached.lateAtCommand).toBeGreaterThan(100);
  expect(reached.lateUnderSnapshot).toBeGreaterThan(30);
  expect(reached.lateCompacted).toBeGreaterThan(50);
  expect(reached.lateOverNewer).toBeGreaterThan(30);
  expect(reached.lateExpired).toBeGreaterThan(0);
  expect(reached.lateMidDump).toBeGreaterThan(50);
}, 120_000);
