import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileExecutable } from "../../../../scripts/build.ts";
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import { inProcessRunner } from "../../../../src/storage/flsm/compaction/compaction-runner.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { resultJson, SMALL_TUNING } from "./compiled-job.ts";
import { levelZero, overlappingRuns, writeInputs } from "./inputs.ts";

/**
 * The compaction Worker from a binary built as scripts/build.ts builds homekv (`bun build --compile`
 * with the Worker entry points), run from a directory with no source near it.
 */
let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "homekv-compiled-worker-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test("a compiled binary runs a compaction in its Worker and writes what the job writes in process", async () => {
  const binary = compileExecutable(join(import.meta.dir, "compiled-job.ts"), join(scratch, "compiled-job"));
  const compiledDir = join(scratch, "compiled");
  const run = Bun.spawnSync([binary, compiledDir], { cwd: scratch, stdout: "pipe", stderr: "pipe" });
  expect({ exitCode: run.exitCode, stderr: run.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });

  const dir = join(scratch, "in-process");
  const levels = levelZero(await writeInputs(realFileSystem, dir, overlappingRuns()));
  let number = 10;
  const request = { dir, job: compactionJob(levels, 0, 0), levels, floor: 0, tuning: SMALL_TUNING };
  const inProcess = await inProcessRunner(realFileSystem, () => number++).run(request);
  expect(JSON.parse(run.stdout.toString())).toEqual(JSON.parse(resultJson(inProcess)));
  const tables = readdirSync(dir).sort();
  expect(readdirSync(compiledDir).sort()).toEqual(tables);
  for (const name of tables)
    expect({ name, same: readFileSync(join(compiledDir, name)).equals(readFileSync(join(dir, name))) }).toEqual({
      name,
      same: true,
    });
}, 120_000);
