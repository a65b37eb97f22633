import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../../../src/errors.ts";
import type { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../../src/random.ts";
import { Manifest, type ManifestOptions } from "../../../../src/storage/flsm/manifest/manifest.ts";
import { ManifestState } from "../../../../src/storage/flsm/manifest/manifest-state.ts";
import type { VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";
import type { WriteCall } from "../../../helpers/storage.ts";
import { DIR, EDITS, table } from "./fixtures.ts";
import { StepDisk, type StepFault } from "./step-disk.ts";

/**
 * For every step of an operation (each append, sync, truncate, rename, remove, directory sync), a
 * power cut there, and an ENOSPC and an EIO there: the state a restart finds is exactly the state
 * before the operation or exactly the one after it, never a mix; never the old one once the
 * operation said it was done; and the directory is left clean (CURRENT and one manifest).
 */
const SETUP = EDITS.slice(0, 2);

/** A compaction's edit: its input removed, its outputs added under a new guard, the counters moved on. */
const COMPACTION: VersionEdit = [
  { kind: "remove-table", number: 1, level: 0 },
  { kind: "add-guard", level: 1, key: bytes("c") },
  { kind: "add-table", table: table(3, 1, "a", "b") },
  { kind: "add-table", table: table(4, 1, "c", "f", "c") },
  { kind: "next-file-number", number: 5 },
  { kind: "flushed-revision", revision: 40 },
];

interface Scenario {
  name: string;
  options: ManifestOptions;
  /** What the operation changes in the state (nothing for a rewrite). */
  edit: VersionEdit;
  run: (manifest: Manifest) => Promise<void>;
  /** The steps it takes when nothing fails, by name: what the per-step tests below go through. */
  steps: WriteCall[];
}

const LOG_STEPS: WriteCall[] = ["append", "sync"];
const REWRITE_STEPS: WriteCall[] = [
  "remove",
  "append",
  "sync",
  "remove",
  "append",
  "sync",
  "rename",
  "syncDir",
  "remove",
];
const SCENARIOS: Scenario[] = [
  { name: "log", options: {}, edit: COMPACTION, run: (m) => m.log(COMPACTION), steps: LOG_STEPS },
  { name: "rewrite", options: {}, edit: [], run: (m) => m.rewrite(), steps: REWRITE_STEPS },
  {
    name: "log that grows the manifest past its rewrite size",
    // Every edit rewrites: the log is always at least one fresh manifest.
    options: { rewriteBytesMin: 0, rewriteGrowthFactor: 1 },
    edit: COMPACTION,
    run: (m) => m.log(COMPACTION),
    steps: [...LOG_STEPS, ...REWRITE_STEPS],
  },
];

function stateAfter(edits: VersionEdit[]): VersionEdit {
  const state = new ManifestState();
  for (const edit of edits) state.apply(edit);
  return state.snapshot();
}

/** The state a restart finds, after checking that it left CURRENT and the one manifest it names. */
async function restart(memory: MemoryFileSystem): Promise<VersionEdit> {
  const manifest = await Manifest.open(memory, DIR);
  expect((await memory.list(DIR)).sort()).toEqual(["CURRENT", `MANIFEST-${manifest.number}`]);
  const state = manifest.state.snapshot();
  // And it goes on: an edit after the restart is durable too.
  await manifest.log([{ kind: "compacted-revision", revision: 1000 }]);
  memory.crash();
  expect((await Manifest.open(memory, DIR)).state.compactedRevision).toBe(1000);
  return state;
}

/** Sets up the scenario on a fresh disk and runs its operation with `fault` at its `step`-th step. */
async function runWithFault(scenario: Scenario, step?: number, fault?: StepFault) {
  const disk = new StepDisk();
  const manifest = await Manifest.open(disk.fs, DIR, scenario.options);
  for (const edit of SETUP) await manifest.log(edit);
  const first = disk.steps.length;
  if (step !== undefined && fault) disk.failAt(first + step, fault);
  const outcome = await scenario.run(manifest).then(
    () => "done" as const,
    (error: unknown) => error,
  );
  return { disk, manifest, outcome, steps: disk.steps.slice(first) };
}

const OLD = stateAfter(SETUP);

for (const scenario of SCENARIOS) {
  const NEW = stateAfter([...SETUP, scenario.edit]);
  describe(`a ${scenario.name} interrupted at each step`, () => {
    test("takes the steps listed here when nothing fails", async () => {
      const { outcome, steps, manifest } = await runWithFault(scenario);
      expect(outcome).toBe("done");
      expect(steps).toEqual(scenario.steps);
      expect(manifest.state.snapshot()).toEqual(NEW);
    });

    for (const [step, call] of scenario.steps.entries()) {
      test(`power cut at step ${step} (${call}), with and without a torn write: the old state or the new, the new once done`, async () => {
        for (const torn of [false, true]) {
          const { disk, outcome } = await runWithFault(scenario, step, "power cut");
          disk.memory.crash(torn ? mulberry32(step + 1) : undefined);
          const found = await restart(disk.memory);
          if (outcome === "done") expect(found).toEqual(NEW);
          else expect([OLD, NEW]).toContainEqual(found);
        }
      });

      for (const fault of ["ENOSPC", "EIO"] as const) {
        test(`${fault} at step ${step} (${call}): the operation fails with E_DISK and changes nothing, or is done; either way the disk agrees`, async () => {
          const { disk, manifest, outcome } = await runWithFault(scenario, step, fault);
          if (outcome === "done") expect(manifest.state.snapshot()).toEqual(NEW);
          else {
            expect(outcome).toBeInstanceOf(HomeKvError);
            expect((outcome as HomeKvError).code).toBe("E_DISK");
            expect(manifest.state.snapshot()).toEqual(OLD);
          }
          // A manifest that still takes edits has the disk agree with it exactly; one that refuses
          // them (a failed sync, an unknown switch) leaves the restart to decide, old or new.
          const next = await manifest.log([{ kind: "flushed-revision", revision: 50 }]).then(
            () => true,
            () => false,
          );
          const expected = manifest.state.snapshot();
          disk.memory.crash();
          const found = await restart(disk.memory);
          if (next) expect(found).toEqual(expected);
          else if (outcome === "done") expect(found).toEqual(NEW);
          else expect([OLD, NEW]).toContainEqual(found);
        });
      }
    }
  });
}

describe("creating a new directory interrupted at each step", () => {
  const EMPTY = new ManifestState().snapshot();
  const CREATE_STEPS: WriteCall[] = ["remove", "append", "sync", "remove", "append", "sync", "rename", "syncDir"];

  test("takes the steps listed here when nothing fails", async () => {
    const disk = new StepDisk();
    await Manifest.open(disk.fs, DIR);
    expect(disk.steps).toEqual(CREATE_STEPS);
  });

  for (const [step, call] of CREATE_STEPS.entries()) {
    for (const fault of ["power cut", "ENOSPC", "EIO"] as const) {
      test(`${fault} at step ${step} (${call}): the next open starts the directory afresh`, async () => {
        const disk = new StepDisk();
        disk.failAt(step, fault);
        const opened = await Manifest.open(disk.fs, DIR).then(
          () => true,
          (error: unknown) => {
            expect(String(error)).toMatch(
              fault === "power cut" ? /power cut/ : /E_DISK|a new manifest could not be created/,
            );
            return false;
          },
        );
        expect(opened).toBe(false);
        disk.memory.crash(mulberry32(step + 1));
        expect(await restart(disk.memory)).toEqual(EMPTY);
      });
    }
  }
});
