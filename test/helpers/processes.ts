import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "..", "..");

/** How to run the `homekv` program: from source by default, or a compiled binary. */
export type HomekvCommand = readonly string[];
export const FROM_SOURCE: HomekvCommand = [process.execPath, resolve(ROOT, "src", "main.ts")];

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one homekv command to completion (bounded by `timeoutMs`) and captures what it printed. */
export async function runHomekv(
  args: readonly string[],
  options: { command?: HomekvCommand; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const proc = Bun.spawn([...(options.command ?? FROM_SOURCE), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    timeout: options.timeoutMs ?? 20_000,
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}

/** A fresh scratch directory; `cleanup` removes it. */
export function scratchDir(prefix = "homekv-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface ServerProcess {
  readonly port: number;
  readonly address: string;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  /** Sends the signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/**
 * Starts `homekv serve` on a free loopback port (port 0: the server picks one and says which in its
 * start line, so there is no race between finding a port and binding it). Unless the arguments say
 * where the data goes, each server gets a fresh data directory of its own, removed when it stops.
 */
export async function startServerProcess(
  extraArgs: readonly string[] = [],
  options: { command?: HomekvCommand; cwd?: string; startTimeoutMs?: number; env?: Record<string, string> } = {},
): Promise<ServerProcess> {
  const ownsData = !extraArgs.includes("--data-dir") && !extraArgs.includes("--in-memory") && options.cwd === undefined;
  const scratch = ownsData ? scratchDir("homekv-data-") : undefined;
  const dataArgs = scratch ? ["--data-dir", scratch.path] : [];
  const proc = Bun.spawn(
    [...(options.command ?? FROM_SOURCE), "serve", "--host", "127.0.0.1", "-p", "0", ...dataArgs, ...extraArgs],
    {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: "1", ...options.env },
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    },
  );
  let output = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);

  const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
  let port: number | undefined;
  while (port === undefined) {
    const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
    if (match) port = Number(match[1]);
    else if (proc.exitCode !== null) {
      scratch?.cleanup();
      throw new Error(`homekv serve exited with ${proc.exitCode}:\n${output}`);
    } else if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`homekv serve did not start in time:\n${output}`);
    } else await Bun.sleep(20);
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    proc,
    output: () => output,
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      const code = await proc.exited;
      scratch?.cleanup();
      return code;
    },
  };
}
