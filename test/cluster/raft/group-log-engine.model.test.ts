import { expect, test } from "bun:test";
import fc from "fast-check";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { MemoryStorage, type RaftStorage } from "../../../src/cluster/raft/storage.ts";
import type { Entry, HardState, Snapshot } from "../../../src/cluster/raft/types.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { bytes } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";

const DIR = "/data/raft-groups";
/** Small segments, so that rotations and removals are frequent; snapshots' data over 8 bytes goes in files. */
const OPTIONS = { segmentBytesMax: 300, snapshotInlineBytesMax: 8 };
const GROUPS = 4;
const ZERO: HardState = { term: 0, vote: 0, commit: 0 };

/** A group as the model has it: its log, and the hard states a crash may leave (the synced one, then any written since without a sync). */
interface ModelGroup {
  log: MemoryStorage;
  hardStates: HardState[];
}

type Op =
  | { kind: "persist"; group: number; hardState?: HardState; from?: number; terms: number[] }
  | { kind: "unsynced"; group: number; hardState: HardState }
  | { kind: "compact"; group: number; at: number; big: boolean }
  | { kind: "install"; group: number; at: number; term: number; big: boolean }
  | { kind: "remove"; group: number };

/** A wave: one operation each for some groups, issued together (so they share appends and syncs), then what follows. */
interface Wave {
  ops: Op[];
  /** "crashMid": the power goes while the wave's sync is under way. */
  next: "none" | "reopen" | "crash" | "crashMid";
  /** The share of what was not synced that a crash keeps (a torn record when neither all nor none). */
  keep: number;
}

const hardState = fc.record({ term: fc.nat(20), vote: fc.nat(5), commit: fc.nat(50) });
const group = fc.integer({ min: 1, max: GROUPS });
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record(
      {
        kind: fc.constant("persist" as const),
        group,
        hardState,
        from: fc.option(fc.nat(), { nil: undefined, freq: 3 }),
        terms: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }),
      },
      { requiredKeys: ["kind", "group", "terms"] },
    ),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("unsynced" as const), group, hardState }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant("compact" as const), group, at: fc.nat(), big: fc.boolean() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("install" as const),
      group,
      at: fc.nat(),
      term: fc.integer({ min: 1, max: 9 }),
      big: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), group }) },
);
const wave: fc.Arbitrary<Wave> = fc.record({
  ops: fc.uniqueArray(op, { selector: (o) => o.group, minLength: 1, maxLength: GROUPS }),
  next: fc.constantFrom("none", "none", "none", "reopen", "crash", "crashMid"),
  keep: fc.nat(100),
});

function copyOf(from: ModelGroup | undefined): ModelGroup {
  const log = new MemoryStorage();
  if (from === undefined) return { log, hardStates: [ZERO] };
  log.applySnapshot(from.log.snapshot());
  log.append(from.log.entries(from.log.firstIndex(), from.log.lastIndex() + 1));
  log.setHardState(from.log.hardState());
  return { log, hardStates: [...from.hardStates] };
}

const entry = (index: number, term: number): Entry => ({
  index,
  term,
  data: index % 2 === 0 ? null : bytes(`${index}/${term}`),
});

/**
 * What `o` does to the engine, and the model group after it (undefined: the group is no more);
 * undefined when it does nothing (a compaction of a group holding no entries).
 */
function plan(
  o: Op,
  before: ModelGroup | undefined,
): { run: (engine: RaftLogEngine) => Promise<void>; after: ModelGroup | undefined } | undefined {
  if (o.kind === "remove") return before && { run: (engine) => engine.removeGroup(o.group), after: undefined };
  const after = copyOf(before);
  const { log } = after;
  if (o.kind === "persist") {
    const start =
      o.from === undefined
        ? log.lastIndex() + 1
        : log.firstIndex() + (o.from % (log.lastIndex() - log.firstIndex() + 2));
    const entries = o.terms.map((term, i) => entry(start + i, term));
    log.append(entries);
    if (o.hardState) log.setHardState(o.hardState);
    after.hardStates = [log.hardState()];
    return { run: (engine) => engine.group(o.group).persist(o.hardState, entries), after };
  }
  if (o.kind === "unsynced") {
    log.setHardState(o.hardState);
    after.hardStates.push(o.hardState);
    return { run: (engine) => engine.group(o.group).persist(o.hardState, [], false), after };
  }
  const data = (index: number) => bytes(o.big ? `the state of group ${o.group} at ${index}` : `s${index}`);
  after.hardStates = [log.hardState()];
  if (o.kind === "compact") {
    const held = log.lastIndex() - log.snapshot().index;
    if (held === 0) return undefined;
    const index = log.snapshot().index + 1 + (o.at % held);
    const conf = { voters: [1, 2, 3], learners: [index % 5] };
    log.compact(index, data(index), conf);
    return { run: (engine) => engine.group(o.group).compact(index, data(index), conf), after };
  }
  // Behind, inside or past the entries held, as a leader's snapshot may be.
  const index = log.snapshot().index + 1 + (o.at % (log.lastIndex() - log.snapshot().index + 3));
  const snapshot: Snapshot = { index, term: o.term, data: data(index), conf: { voters: [1, 2], learners: [] } };
  log.applySnapshot(snapshot);
  return { run: (engine) => engine.group(o.group).installSnapshot(snapshot), after };
}

/** A log's snapshot and entries. */
function contents(log: RaftStorage) {
  return { snapshot: log.snapshot(), entries: log.entries(log.firstIndex(), log.lastIndex() + 1) };
}

/**
 * Checks group `id` as the reopened engine holds it (an empty log when it holds none) against
 * `candidates` (undefined: no group): its log must be one of theirs, its hard state one they allow
 * (either's: a crash may keep an unacknowledged write's entries and lose its hard state). Returns
 * the model group from now on (`crashed`: what it holds now is all synced).
 */
function check(
  engine: RaftLogEngine,
  id: number,
  candidates: (ModelGroup | undefined)[],
  crashed: boolean,
): ModelGroup | undefined {
  const log = engine.groups().includes(id) ? engine.group(id) : new MemoryStorage();
  const found = { ...contents(log), hardState: log.hardState() };
  const chosen = candidates.findIndex((c) => Bun.deepEquals(contents(c?.log ?? new MemoryStorage()), contents(log)));
  const allowed = candidates.flatMap((c) => c?.hardStates ?? [ZERO]);
  if (chosen === -1 || !allowed.some((state) => Bun.deepEquals(state, found.hardState))) {
    const expected = candidates.map((c) => c && { ...contents(c.log), hardStates: c.hardStates });
    expect({ group: id, found }).toEqual({ group: id, expected } as never);
  }
  if (found.entries.length === 0 && found.snapshot.index === 0 && Bun.deepEquals(found.hardState, ZERO))
    return undefined;
  const now = copyOf(candidates[chosen]);
  now.log.setHardState(found.hardState);
  // What was not synced stays so across a clean close: a later crash may still lose it.
  if (crashed) now.hardStates = [found.hardState];
  return now;
}

test("property: many groups' persists, compactions, snapshot installs and removals in waves that share syncs, with reopens and crashes (between waves and during one): after each, every group holds what was acknowledged, and nothing else appears", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(wave, { maxLength: 14 }), async (waves) => {
      let fs = new MemoryFileSystem();
      let engine = await RaftLogEngine.open(fs, DIR, undefined, OPTIONS);
      const model = new Map<number, ModelGroup>();
      for (const w of waves) {
        const planned = w.ops.flatMap((o) => {
          const p = plan(o, model.get(o.group));
          return p ? [{ group: o.group, ...p }] : [];
        });
        const release = w.next === "crashMid" ? fs.holdSyncs() : undefined;
        let settled = 0;
        const runs = planned.map((p) => p.run(engine).then(() => settled++));
        if (release === undefined) {
          await Promise.all(runs);
          for (const p of planned) {
            if (p.after === undefined) model.delete(p.group);
            else model.set(p.group, p.after);
          }
        } else {
          await waitFor(() => fs.syncsWaiting > 0 || settled === planned.length, {
            what: "the wave's sync to start, or the wave to end",
            intervalMs: 1,
          });
        }
        if (w.next === "none") continue;
        // After a crash during a wave its writes never finish: that engine is left as it is, and
        // the next one boots from an image of the disk, where what the old one still had
        // scheduled (a flush in its next turn) cannot land.
        if (w.next === "reopen") await engine.close();
        else {
          fs.crash(() => w.keep / 100);
          fs = fs.image();
        }
        engine = await RaftLogEngine.open(fs, DIR, undefined, OPTIONS);
        const ids = new Set([...model.keys(), ...planned.map((p) => p.group), ...engine.groups()]);
        for (const id of ids) {
          const pending = release ? planned.find((p) => p.group === id) : undefined;
          const now = check(
            engine,
            id,
            pending ? [model.get(id), pending.after] : [model.get(id)],
            w.next !== "reopen",
          );
          if (now === undefined) model.delete(id);
          else model.set(id, now);
        }
      }
    }),
    { numRuns: 300 },
  );
});
