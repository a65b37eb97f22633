import { expect, test } from "bun:test";
import fc from "fast-check";
import { HomeKvError } from "../../src/errors.ts";
import { createMvccStore, type KeyChain, type MvccStore, type Snapshot } from "../../src/storage/mvcc/store.ts";
import type { KeyRecord, WriteOp } from "../../src/storage/ops.ts";

/**
 * Model-based test of the MVCC store: the model is a plain map of live keys plus a copy of it per
 * committed revision, and after every command the store must agree with it at every readable revision.
 */

const KEYS = ["a", "b", "c", "d", "e", "f"];

type Command =
  | { kind: "apply"; ops: WriteOp[] }
  | { kind: "open" }
  | { kind: "readSnapshot"; pick: number }
  | { kind: "close"; pick: number }
  | { kind: "gc"; maxKeys: number }
  | { kind: "readAt"; offset: number };

const writeOp: fc.Arbitrary<WriteOp> = fc.record({
  key: fc.constantFrom(...KEYS),
  value: fc.option(fc.uint8Array({ maxLength: 3 }), { nil: null }),
});

const batch = fc.uniqueArray(writeOp, { minLength: 1, maxLength: 4, selector: (op) => op.key });

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("apply"), ops: batch }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("open") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("readSnapshot"), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close"), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("gc"), maxKeys: fc.integer({ min: 1, max: 4 }) }) },
  // offset 0 reads one below the compacted revision; large offsets clamp to one above the current revision.
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("readAt"), offset: fc.nat({ max: 30 }) }) },
);

type State = ReadonlyMap<string, Uint8Array>;

class Model {
  live = new Map<string, Uint8Array>();
  /** The state after each committed revision; revision 0 is the empty store. */
  history: State[] = [new Map()];
  /** Each open snapshot with the revision and the compacted revision the model was at when it was opened. */
  open: { snapshot: Snapshot; revision: number; compacted: number }[] = [];

  /** `historyRevisions`: how many past revisions stay readable besides the current one. */
  constructor(readonly historyRevisions: number) {}

  get revision() {
    return this.history.length - 1;
  }

  /** The oldest revision a plain read may name. */
  get compacted() {
    return Math.max(0, this.revision - this.historyRevisions);
  }

  /** The oldest revision GC must keep: the compacted revision, or the one an open snapshot was opened at. */
  get floor() {
    return Math.min(this.compacted, ...this.open.map((o) => o.compacted));
  }

  apply(ops: readonly WriteOp[]) {
    for (const { key, value } of ops) {
      if (value === null) this.live.delete(key);
      else this.live.set(key, value);
    }
    this.history.push(new Map(this.live));
  }
}

function expectState(values: (Uint8Array | undefined)[], state: State) {
  expect(values.map((v) => (v === undefined ? undefined : [...v]))).toEqual(
    KEYS.map((k) => (state.has(k) ? [...state.get(k)!] : undefined)),
  );
}

function expectAgreement(store: MvccStore, model: Model) {
  const stats = store.stats();
  let valueBytes = 0;
  for (const value of model.live.values()) valueBytes += value.byteLength;
  expect(stats).toMatchObject({
    revision: model.revision,
    keys: model.live.size,
    valueBytes,
    openSnapshots: model.open.length,
    gcFloor: model.floor,
    compactedRevision: model.compacted,
  });
  expect(stats.versions).toBeGreaterThanOrEqual(stats.keys);
  for (const { snapshot, revision } of model.open) expectState(snapshot.read(KEYS), model.history[revision]!);
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof HomeKvError) return error.code;
    throw error;
  }
}

function run(store: MvccStore, model: Model, cmd: Command) {
  switch (cmd.kind) {
    case "apply":
      store.apply({ revision: store.revision + 1, ops: cmd.ops });
      model.apply(cmd.ops);
      break;
    case "open":
      model.open.push({ snapshot: store.openSnapshot(), revision: model.revision, compacted: model.compacted });
      expect(model.open.at(-1)!.snapshot.revision).toBe(model.revision);
      expect(model.open.at(-1)!.snapshot.compactedRevision).toBe(model.compacted);
      break;
    case "readSnapshot": {
      const open = model.open[cmd.pick % model.open.length];
      if (open) expectState(open.snapshot.read(KEYS), model.history[open.revision]!);
      break;
    }
    case "close": {
      const [open] = model.open.splice(cmd.pick % model.open.length, 1);
      open?.snapshot.release();
      break;
    }
    case "gc":
      expect(store.collectGarbage(cmd.maxKeys).keysVisited).toBeLessThanOrEqual(cmd.maxKeys);
      break;
    case "readAt": {
      // Every revision from the compacted one to the current one is readable.
      const revision = Math.min(model.compacted - 1 + cmd.offset, model.revision + 1);
      const read = () => store.read(KEYS, revision);
      if (revision < model.compacted) expect(codeOf(read)).toBe("E_COMPACTED");
      else if (revision > model.revision) expect(codeOf(read)).toBe("E_FUTURE_REVISION");
      else expectState(read(), model.history[revision]!);
      break;
    }
  }
}

test("the MVCC store agrees with a map-per-revision model", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 }),
      fc.array(command, { maxLength: 80, size: "max" }),
      // Chains walked from the newest, and chains indexed by revision after a couple of versions.
      fc.constantFrom(1, 2, 4, undefined),
      (historyRevisions, commands, ringMin) => {
        const store = createMvccStore({ historyRevisions, tuning: { ringMin } });
        const model = new Model(historyRevisions);
        for (const cmd of commands) {
          run(store, model, cmd);
          expectAgreement(store, model);
        }

        for (const { snapshot } of model.open.splice(0)) snapshot.release();
        for (let slices = 0; store.collectGarbage(3).more; slices++) {
          if (slices > 100) throw new Error("GC never reported more: false");
        }
        expectAgreement(store, model);
        // What is left beyond one version per live key is the history still within retention.
        const retained = store.stats().versions;
        expect(retained).toBeGreaterThanOrEqual(model.live.size);
        if (historyRevisions === 0)
          expect(store.stats()).toMatchObject({ versions: model.live.size, openSnapshots: 0 });
      },
    ),
    { numRuns: 300 },
  );
});

/**
 * The same store against a model of whole records (counters included), through every command kind a
 * log carries (batches, transactions that read what they wrote, Compact, TTL expiries), snapshots,
 * GC slices and restores from the store's own dump mid-sequence (a checkpoint taken and loaded): at
 * every readable revision each key's record, the changes after the compacted revision, and a
 * `versions` count equal to the versions the chains hold. Tiny rings and table chunks, so freed rows
 * and ids are reused within one command.
 */
type Rec = { value: number[]; createRevision: number; modRevision: number; version: number };
type RecordCommand =
  | { kind: "batch"; ops: WriteOp[] }
  | { kind: "txn"; exists: string; success: WriteOp[]; failure: WriteOp[]; get: string }
  | { kind: "compact"; offset: number }
  | { kind: "expire"; keys: string[]; stale: boolean }
  | { kind: "open" }
  | { kind: "close"; pick: number }
  | { kind: "gc"; maxKeys: number }
  | { kind: "restore"; page: number };

const recordCommand: fc.Arbitrary<RecordCommand> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("batch"), ops: batch }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("txn"),
      exists: fc.constantFrom(...KEYS),
      success: batch,
      failure: batch,
      get: fc.constantFrom(...KEYS),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact"), offset: fc.nat({ max: 8 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("expire"),
      keys: fc.uniqueArray(fc.constantFrom(...KEYS), { minLength: 1, maxLength: 3 }),
      stale: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("open") }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close"), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("gc"), maxKeys: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restore"), page: fc.integer({ min: 1, max: 4 }) }) },
);

class RecordModel {
  history: Map<string, Rec>[] = [new Map()];
  compacted = 0;
  open: { snapshot: Snapshot; revision: number }[] = [];

  constructor(readonly historyRevisions: number) {}

  get revision() {
    return this.history.length - 1;
  }

  get live() {
    return this.history.at(-1)!;
  }

  /** Commits `ops` (after `compactTo` for a Compact) as the next revision. */
  commit(ops: readonly WriteOp[], compactTo?: number) {
    const revision = this.revision + 1;
    this.compacted = Math.max(this.compacted, revision - this.historyRevisions);
    if (compactTo !== undefined) this.compacted = Math.max(this.compacted, Math.min(compactTo, revision));
    const next = new Map(this.live);
    for (const { key, value } of ops) {
      const was = next.get(key);
      if (value === null) next.delete(key);
      else
        next.set(key, {
          value: [...value],
          createRevision: was?.createRevision ?? revision,
          modRevision: revision,
          version: (was?.version ?? 0) + 1,
        });
    }
    this.history.push(next);
  }
}

const recordOf = (record: KeyRecord) =>
  record.value === undefined
    ? undefined
    : {
        value: [...record.value],
        createRevision: record.createRevision,
        modRevision: record.modRevision,
        version: record.version,
      };

/** The changes the model made after revision `after`, as `changes` reports them. */
function modelChanges(model: RecordModel, after: number) {
  const changes: unknown[] = [];
  for (let revision = after + 1; revision <= model.revision; revision++) {
    const [before, now] = [model.history[revision - 1]!, model.history[revision]!];
    for (const key of KEYS) {
      const [was, is] = [before.get(key), now.get(key)];
      if (is?.modRevision === revision || (was && !is))
        changes.push({
          key,
          revision,
          value: is?.value ?? null,
          previous: was?.value,
          createRevision: is?.createRevision ?? 0,
          version: is?.version ?? 0,
        });
    }
  }
  return changes;
}

function expectRecords(store: MvccStore, model: RecordModel) {
  expect(store.stats()).toMatchObject({ revision: model.revision, compactedRevision: model.compacted });
  for (let revision = model.compacted; revision <= model.revision; revision++)
    expect({ revision, records: store.readRecords(KEYS, revision).map(recordOf) }).toEqual({
      revision,
      records: KEYS.map((key) => model.history[revision]!.get(key)),
    });
  for (const { snapshot, revision } of model.open)
    expect(snapshot.readRecords(KEYS).map(recordOf)).toEqual(KEYS.map((key) => model.history[revision]!.get(key)));
  const changes = store.changes({ after: model.compacted, limit: 10_000 }).changes.map((change) => ({
    ...change,
    value: change.value && [...change.value],
    previous: change.previous && [...change.previous],
  }));
  expect(changes).toEqual(modelChanges(model, model.compacted) as typeof changes);
  const held = store.dumpChains({ limit: 10_000, revision: model.revision });
  expect(store.stats().versions).toBe(held.reduce((sum, chain) => sum + chain.versions.length, 0));
}

function runRecord(store: MvccStore, model: RecordModel, cmd: RecordCommand, fresh: () => MvccStore): MvccStore {
  const revision = store.revision + 1;
  switch (cmd.kind) {
    case "batch":
      store.apply({ revision, ops: cmd.ops });
      model.commit(cmd.ops);
      break;
    case "txn": {
      const succeeded = model.live.has(cmd.exists);
      const ops = succeeded ? cmd.success : cmd.failure;
      const reads = ops.some((op) => op.key === cmd.get) ? [] : [{ get: cmd.get }];
      const result = store.apply({
        revision,
        kind: "txn",
        txn: {
          compares: [{ key: cmd.exists, target: "exists", op: "==", number: 1 }],
          success: succeeded ? [...cmd.success, ...reads] : cmd.success,
          failure: succeeded ? cmd.failure : [...cmd.failure, ...reads],
        },
      });
      model.commit(ops);
      expect(result.succeeded).toBe(succeeded);
      expect(result.reads?.map(recordOf)).toEqual(reads.map(({ get }) => model.live.get(get)));
      break;
    }
    case "compact": {
      const compactTo = model.compacted + cmd.offset;
      store.apply({ revision, kind: "compact", compactTo });
      model.commit([], compactTo);
      break;
    }
    case "expire": {
      // A stale expiry names a revision the key was not last written at: it deletes nothing.
      const keys = cmd.keys.map((key) => ({
        key,
        revision: (model.live.get(key)?.modRevision ?? 0) + (cmd.stale ? 1 : 0),
      }));
      store.apply({ revision, kind: "expire", keys });
      model.commit(cmd.stale ? [] : cmd.keys.filter((key) => model.live.has(key)).map((key) => ({ key, value: null })));
      break;
    }
    case "open":
      model.open.push({ snapshot: store.openSnapshot(), revision: model.revision });
      break;
    case "close":
      model.open.splice(cmd.pick % Math.max(1, model.open.length), 1)[0]?.snapshot.release();
      break;
    case "gc":
      store.collectGarbage(cmd.maxKeys);
      break;
    case "restore": {
      // A checkpoint of the whole store, loaded into a new one: what it held before GC had its turn.
      const chains: KeyChain[] = [];
      for (;;) {
        const page = store.dumpChains({ after: chains.at(-1)?.key, limit: cmd.page, revision: store.revision });
        if (page.length === 0) break;
        chains.push(...page);
      }
      for (const { snapshot } of model.open.splice(0)) snapshot.release();
      const restored = fresh();
      restored.restore(store.revision, store.compactedRevision, chains);
      return restored;
    }
  }
  return store;
}

/** Runs GC slices until none is left to do (a bounded number of them). */
function drainGc(store: MvccStore) {
  for (let slices = 0; store.collectGarbage(2).more; slices++)
    if (slices > 500) throw new Error("GC still reports more after 500 slices");
}

test("the MVCC store agrees with a model of whole records through transactions, Compact, expiries, snapshots and restores", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 4 }),
      fc.array(recordCommand, { maxLength: 60, size: "max" }),
      fc.constantFrom(1, 2, 4),
      (historyRevisions, commands, ringMin) => {
        const fresh = () => createMvccStore({ historyRevisions, tuning: { ringMin, chunkBits: 2, slabBytes: 64 } });
        let store = fresh();
        const model = new RecordModel(historyRevisions);
        for (const cmd of commands) {
          store = runRecord(store, model, cmd, fresh);
          expectRecords(store, model);
        }
        for (const { snapshot } of model.open.splice(0)) snapshot.release();
        drainGc(store);
        expectRecords(store, model);
        // Drained, the store holds exactly what reads from the compacted revision on need: each
        // key's state there if it is live, and every change after it. (A restored key's history
        // under the floor waits until the floor passes its newest version: its only queue entry.)
        const needed = model.history[model.compacted]!.size + modelChanges(model, model.compacted).length;
        if (!commands.some((cmd) => cmd.kind === "restore")) expect(store.stats().versions).toBe(needed);
        // Once the history has moved past every write, one version per live key is left.
        for (let i = 0; i <= historyRevisions; i++) runRecord(store, model, { kind: "compact", offset: 0 }, fresh);
        drainGc(store);
        expectRecords(store, model);
        expect(store.stats().versions).toBe(model.live.size);
      },
    ),
    { numRuns: 300 },
  );
});
