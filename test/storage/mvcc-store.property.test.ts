import { expect, test } from "bun:test";
import fc from "fast-check";
import { HomeKvError } from "../../src/errors.ts";
import { createMvccStore, type MvccStore, type Snapshot } from "../../src/storage/mvcc/store.ts";
import type { WriteOp } from "../../src/storage/ops.ts";

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
  /** Each open snapshot with the revision the model was at when it was opened. */
  open: { snapshot: Snapshot; revision: number }[] = [];

  /** `historyRevisions`: how many past revisions stay readable besides the current one. */
  constructor(readonly historyRevisions: number) {}

  get revision() {
    return this.history.length - 1;
  }

  /** The oldest revision a plain read may name. */
  get compacted() {
    return Math.max(0, this.revision - this.historyRevisions);
  }

  /** The oldest revision GC must keep: the compacted revision, or an older open snapshot's. */
  get floor() {
    return Math.min(this.compacted, ...this.open.map((o) => o.revision));
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
      model.open.push({ snapshot: store.openSnapshot(), revision: model.revision });
      expect(model.open.at(-1)!.snapshot.revision).toBe(model.revision);
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
