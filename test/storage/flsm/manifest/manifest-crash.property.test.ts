import { expect, test } from "bun:test";
import fc from "fast-check";
import { mulberry32 } from "../../../../src/random.ts";
import { Manifest } from "../../../../src/storage/flsm/manifest/manifest.ts";
import type { ManifestView } from "../../../../src/storage/flsm/manifest/manifest-state.ts";
import type { EditItem, TableMeta, VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { DIR } from "./fixtures.ts";
import { StepDisk } from "./step-disk.ts";

/**
 * Random sequences of valid edits (flushes, guards, compactions that move or replace tables, the
 * revisions moving on), a power cut at a random step (of a log, a rewrite or the creation), with or
 * without a torn write: the restart finds the model's state after the last acknowledged edit, or
 * after the one in flight, nothing else. The model is a plain record, independent of ManifestState.
 */
interface Model {
  next: number;
  flushed: number;
  compacted: number;
  /** "level:hex key" */
  guards: Set<string>;
  tables: Map<number, TableMeta>;
}

const LEVELS = 4;
const emptyModel = (): Model => ({ next: 1, flushed: 0, compacted: 0, guards: new Set(), tables: new Map() });

function copy(model: Model): Model {
  return { ...model, guards: new Set(model.guards), tables: new Map(model.tables) };
}

function hex(key: Uint8Array): string {
  return Buffer.from(key).toString("hex");
}

/** What the model and the manifest are compared by. */
function normal(model: Model) {
  return {
    next: model.next,
    flushed: model.flushed,
    compacted: model.compacted,
    guards: [...model.guards].sort(),
    tables: [...model.tables.values()].sort((a, b) => a.number - b.number),
  };
}

function fromManifest(view: ManifestView): ReturnType<typeof normal> {
  const guards = view.levels().flatMap((level, n) => level.flatMap((g) => (g.key ? [`${n}:${hex(g.key)}`] : [])));
  return {
    next: view.nextFileNumber,
    flushed: view.flushedRevision,
    compacted: view.compactedRevision,
    guards: guards.sort(),
    tables: view.liveFiles().map((n) => view.table(n)!),
  };
}

/** A random valid edit of `model`, and the model after it. */
function randomEdit(rand: () => number, model: Model): { edit: VersionEdit; after: Model } {
  const after = copy(model);
  const edit: EditItem[] = [];
  const pick = <T>(items: T[]): T | undefined => items[Math.floor(rand() * items.length)];
  const key = (prefix: Uint8Array = new Uint8Array(0)) =>
    new Uint8Array([
      ...prefix,
      ...Array.from({ length: 1 + Math.floor(rand() * 2) }, () => 97 + Math.floor(rand() * 4)),
    ]);
  const addTable = (number: number, level: number) => {
    const guards = [...after.guards].filter((g) => g.startsWith(`${level}:`));
    const guardHex = level > 0 && rand() < 0.7 ? pick(guards)?.split(":")[1] : undefined;
    const guard = guardHex === undefined ? undefined : new Uint8Array(Buffer.from(guardHex, "hex"));
    const smallest = key(guard);
    const largest = key(smallest);
    const revision = Math.floor(rand() * 1000);
    const table: TableMeta = {
      number,
      level,
      fileBytes: 1 + Math.floor(rand() * 1e6),
      smallest,
      largest,
      minRevision: revision,
      maxRevision: revision + Math.floor(rand() * 100),
      entries: 1 + Math.floor(rand() * 1000),
      ...(guard ? { guard } : {}),
    };
    after.tables.set(number, table);
    edit.push({ kind: "add-table", table });
  };
  for (let items = 1 + Math.floor(rand() * 4); items > 0; items--) {
    const live = [...after.tables.values()];
    const choice = Math.floor(rand() * 6);
    if (choice === 0) {
      const level = 1 + Math.floor(rand() * (LEVELS - 1));
      const guard = key();
      if (after.guards.has(`${level}:${hex(guard)}`)) continue;
      after.guards.add(`${level}:${hex(guard)}`);
      edit.push({ kind: "add-guard", level, key: guard });
    } else if (choice <= 2) addTable(after.next++, Math.floor(rand() * LEVELS));
    else if (choice === 3 || choice === 4) {
      const table = pick(live);
      if (!table) continue;
      after.tables.delete(table.number);
      edit.push({ kind: "remove-table", number: table.number, level: table.level });
      // A move: the same table one level down (the sentinel range, which has no lower bound).
      if (choice === 4 && table.level < LEVELS - 1) {
        const { guard: _, ...rest } = table;
        const moved = { ...rest, level: table.level + 1 };
        after.tables.set(table.number, moved);
        edit.push({ kind: "add-table", table: moved });
      }
    } else {
      after.flushed += Math.floor(rand() * 50);
      after.compacted += Math.floor(rand() * 2) * Math.floor(rand() * 20);
      edit.push({ kind: "flushed-revision", revision: after.flushed });
      edit.push({ kind: "compacted-revision", revision: after.compacted });
    }
  }
  if (after.next > model.next) edit.push({ kind: "next-file-number", number: after.next });
  return { edit, after };
}

test("after a power cut at any step of a random run of edits, the restart finds the last acknowledged state or the one in flight", async () => {
  const coverage = { cuts: 0, rewrites: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.integer({ min: 0, max: 30 }),
      fc.nat({ max: 100 }),
      fc.boolean(),
      async (seed, edits, cutAt, torn) => {
        const rand = mulberry32(seed);
        const disk = new StepDisk();
        disk.failAt(cutAt, "power cut");
        let acknowledged = emptyModel();
        let inFlight: Model | undefined;
        try {
          // Small rewrite sizes, so that a run of a few edits rewrites the manifest several times.
          const manifest = await Manifest.open(disk.fs, DIR, { rewriteBytesMin: 300, rewriteGrowthFactor: 2 });
          let rewritesBefore = 0;
          for (let n = 0; n < edits; n++) {
            const { edit, after } = randomEdit(rand, acknowledged);
            inFlight = after;
            await manifest.log(edit);
            coverage.rewrites += manifest.stats.rewrites - rewritesBefore;
            rewritesBefore = manifest.stats.rewrites;
            acknowledged = after;
            inFlight = undefined;
          }
        } catch (error) {
          expect(String(error)).toMatch(/power cut/);
        }
        disk.memory.crash(torn ? mulberry32(seed + 1) : undefined);
        const found = fromManifest((await Manifest.open(disk.memory, DIR)).state);
        const allowed = [normal(acknowledged), ...(inFlight ? [normal(inFlight)] : [])];
        expect(allowed).toContainEqual(found);
        if (disk.powerCut) coverage.cuts++;
      },
    ),
    { numRuns: 400 },
  );
  // The runs did what they are for (about half are cut short, and ~300 rewrites happen in all).
  expect(coverage.cuts).toBeGreaterThan(100);
  expect(coverage.rewrites).toBeGreaterThan(100);
});
