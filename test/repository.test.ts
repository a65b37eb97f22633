import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./helpers/processes.ts";

/** Every file the repository tracks, as git lists it. */
function trackedFiles(): string[] {
  const listed = Bun.spawnSync(["git", "ls-files"], { cwd: ROOT, stdout: "pipe" });
  expect(listed.exitCode).toBe(0);
  return listed.stdout.toString().split("\n").filter(Boolean);
}

test("no tracked file holds a merge's conflict markers", () => {
  const marked: string[] = [];
  for (const file of trackedFiles()) {
    if (!/\.(ts|md|json|proto|toml|yaml|yml|sh)$/.test(file) && !file.startsWith(".ci/")) continue;
    const content = readFileSync(join(ROOT, file), "utf8");
    if (/^(<{7}|>{7}) /m.test(content)) marked.push(file);
  }
  expect(marked).toEqual([]);
});

test("no test waits on bun:test's rejects or resolves matchers (test/helpers/rejection.ts says why)", () => {
  const waiting: string[] = [];
  for (const file of trackedFiles()) {
    if (!file.startsWith("test/") || !file.endsWith(".ts")) continue;
    const content = readFileSync(join(ROOT, file), "utf8");
    if (/\)\s*\.(rejects|resolves)\s*\./.test(content)) waiting.push(file);
  }
  expect(waiting).toEqual([]);
});
