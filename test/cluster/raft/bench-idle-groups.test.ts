import { expect, test } from "bun:test";

test("scripts/bench-idle-groups.ts measures both ways, and quiet groups send nothing (smoke run)", () => {
  const run = Bun.spawnSync([process.execPath, "scripts/bench-idle-groups.ts", "--groups", "4", "--ticks", "20"], {
    cwd: `${import.meta.dir}/../../..`,
  });
  expect(run.stderr.toString()).toBe("");
  const out = run.stdout.toString();
  // Without quiescence each follower of each group gets a heartbeat and answers it every tick.
  expect(out).toMatch(/^\| off \| 16 \| [\d.]+% \|$/m);
  expect(out).toMatch(/^\| on \| 0 \| [\d.]+% \|$/m);
});
