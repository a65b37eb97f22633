import { expect } from "bun:test";
import { ROOT } from "./processes.ts";

/** Runs `bun scripts/<script> ...args` to its end: its exit code and what it wrote. */
export async function runBenchScript(
  script: string,
  args: readonly string[],
): Promise<{ exitCode: number; out: string; err: string }> {
  const proc = Bun.spawn([process.execPath, `${ROOT}/scripts/${script}`, ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { exitCode: await proc.exited, out, err };
}

/** The processes still running whose command line matches `pattern` (pgrep -f), one per line. */
export function leftoverProcesses(pattern: string): string {
  return Bun.spawnSync(["pgrep", "-f", pattern]).stdout.toString().trim();
}

/**
 * Runs `bun scripts/<script> --quick [...args]` and returns what it printed, once it has checked
 * that the run exited 0, wrote no error, and left no process whose command line matches
 * `leftovers` (a pgrep pattern for the scratch directories the benchmark's servers run in).
 */
export async function quickBenchOutput(
  script: string,
  leftovers: string,
  args: readonly string[] = [],
): Promise<string> {
  const { exitCode, out, err } = await runBenchScript(script, ["--quick", ...args]);
  // A failed run shows all it wrote to stderr (bun prints an uncaught error as "error: ..."), so the report says why.
  expect({ exitCode, err: exitCode !== 0 || /error/i.test(err) ? err : "" }).toEqual({ exitCode: 0, err: "" });
  expect(leftoverProcesses(leftovers)).toBe("");
  return out;
}
