import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { SCRATCH_PREFIX } from "../../scripts/bench/partitioned.ts";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the partition move benchmark: it must load a partition, move it, print the
 * probes' table with both rows and the JSON line, and stop every process and remove every data
 * directory it made. Not a timing assertion: only that the move ended and no probe failed.
 */
const scratchDirs = () => new Set(readdirSync(tmpdir()).filter((name) => name.startsWith(SCRATCH_PREFIX)));

test("scripts/bench-move.ts --quick moves a partition twice (caught up from the log, then from a checkpoint) and prints the probes before and during each move", async () => {
  const before = scratchDirs();
  const out = await quickBenchOutput("bench-move.ts", SCRATCH_PREFIX, []);
  expect(out).toMatch(
    /Moved one partition of 2 MB \(\d+ keys of 10 KiB, loaded in [\d.]+ and [\d.]+ s\) from n2 to n1/,
  );
  for (const from of ["log", "checkpoint"]) {
    expect(out).toMatch(new RegExp(String.raw`\| n2's ${from} \| [\d.]+ \| [\d.]+ \|`));
    for (const row of ["before the move", "during the move"])
      expect(out).toMatch(new RegExp(String.raw`\| ${row} \(${from}\) \| \d+ \| 0 \|( [\d.]+ \|){3}`));
  }
  const { runs } = JSON.parse(out.trim().split("\n").at(-1)!);
  expect(runs.map((r: { catchUp: string; moveSeconds: number }) => r.moveSeconds > 0 && r.catchUp)).toEqual([
    "log",
    "checkpoint",
  ]);
  expect([...scratchDirs()].filter((name) => !before.has(name))).toEqual([]);
}, 120_000);
