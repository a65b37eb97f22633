/** How one run of `bun test` ended. */
export type TestOutcome =
  | { kind: "passed"; seconds: number }
  /** A test failed: `test` is "file › name", `error` the first error line printed before it. */
  | { kind: "failed"; seconds: number; test: string; error: string }
  | { kind: "timedOut"; seconds: number }
  /** Non-zero exit with no failed test: the code did not load, or the runner broke. */
  | { kind: "broken"; seconds: number; output: string };

/**
 * Runs `bun test --bail <paths>` in `cwd`, killed after `limitSeconds`, with npm test's time limit
 * per test (package.json; bun's own default of 5 s failed slow property tests on unmutated code).
 * Output is captured, not shown: what matters is whether it passed and, if not, which test failed first.
 */
export async function runTests(cwd: string, paths: readonly string[], limitSeconds: number): Promise<TestOutcome> {
  const started = performance.now();
  const child = Bun.spawn([process.execPath, "test", "--bail", "--timeout", "60000", ...paths], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, limitSeconds * 1000);
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  if (timedOut) return { kind: "timedOut", seconds };
  if (exitCode === 0) return { kind: "passed", seconds };
  const output = `${stdout}\n${stderr}`;
  const failure = firstFailure(output);
  return failure ? { kind: "failed", seconds, ...failure } : { kind: "broken", seconds, output };
}

/** The first "(fail)" line of bun's report, with the file it is under and the error printed before it. */
function firstFailure(output: string): { test: string; error: string } | undefined {
  let file = "";
  let error = "";
  for (const line of output.split("\n")) {
    const header = /^(\S+\.test\.ts):$/.exec(line);
    if (header) file = header[1]!.replace(/^.*\//, "");
    else if (/^\w*Error: |^error: /.test(line) && error === "") error = line.trim();
    else if (line.startsWith("(fail) ")) {
      const name = line.slice("(fail) ".length).replace(/ \[[\d.]+m?s\]$/, "");
      return { test: `${file} › ${name}`, error };
    }
  }
  return undefined;
}
