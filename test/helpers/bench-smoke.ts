import { expect } from "bun:test";
import { ROOT } from "./processes.ts";

/**
 * Runs `bun scripts/<script> --quick` and returns what it printed, once it has checked that the run
 * exited 0, wrote no error, and left no process whose command line matches `leftovers` (a pgrep
 * pattern for the scratch directories the benchmark's servers run in).
 */
export async function quickBenchOutput(script: string, leftovers: string): Promise<string> {
  const proc = Bun.spawn([process.execPath, `${ROOT}/scripts/${script}`, "--quick"], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ exitCode: await proc.exited, err: err.includes("Error") ? err : "" }).toEqual({ exitCode: 0, err: "" });
  expect(Bun.spawnSync(["pgrep", "-f", leftovers]).stdout.toString().trim()).toBe("");
  return out;
}
