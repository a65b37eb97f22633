import { expect, test } from "bun:test";

test("scripts/bench-group-log.ts measures both logs, and the engine syncs once per round for all groups (smoke run)", () => {
  const run = Bun.spawnSync([process.execPath, "scripts/bench-group-log.ts", "--groups", "4", "--rounds", "3"], {
    cwd: `${import.meta.dir}/../../..`,
  });
  expect(run.stderr.toString()).toBe("");
  const out = run.stdout.toString();
  // One sync per round for 4 groups' persists; a sync per persist for logs of their own.
  expect(out).toMatch(/^\| one RaftLogEngine \| \d+ \| 0\.2500 \|$/m);
  expect(out).toMatch(/^\| 4 DurableRaftLogs \| \d+ \| 1\.0000 \|$/m);
});
