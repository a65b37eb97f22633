import { afterAll } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { HomeKvClient } from "../../src/client/client.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "./processes.ts";

/** The non-empty lines of what a process printed. */
export const lines = (output: string): string[] => output.split("\n").filter((line) => line.trim() !== "");

/** Starts `homekv serve` on `dir` (which the caller owns: it survives the server). */
export function startOn(dir: string, extraArgs: readonly string[] = []): Promise<ServerProcess> {
  return startServerProcess(["--data-dir", dir, ...extraArgs]);
}

/**
 * Data directories and servers for the tests of a file, all killed and removed after them:
 * `dataDir()` is a fresh directory, `start` a server on one (a directory outlives its servers),
 * `killAfter` a server started otherwise.
 */
export function serversOnDataDirs(prefix: string) {
  const dirs: { cleanup: () => void }[] = [];
  const servers: ServerProcess[] = [];
  afterAll(async () => {
    for (const server of servers) await killServer(server);
    for (const dir of dirs) dir.cleanup();
  });
  return {
    dataDir(): string {
      const dir = scratchDir(prefix);
      dirs.push(dir);
      return dir.path;
    },
    async start(dir: string, extraArgs: readonly string[] = []): Promise<ServerProcess> {
      const server = await startOn(dir, extraArgs);
      servers.push(server);
      return server;
    },
    killAfter(server: ServerProcess): void {
      servers.push(server);
    },
  };
}

/** Runs `body` with a client of `server`, closed afterwards. */
export async function withClient<T>(server: ServerProcess, body: (client: HomeKvClient) => Promise<T>): Promise<T> {
  const client = new HomeKvClient({ address: server.address });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/** SIGKILLs the server (no chance to flush, checkpoint or unlock) and waits until it is gone. */
export async function killServer(server: ServerProcess): Promise<void> {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGKILL");
  await server.proc.exited;
}

/** The WAL segment files of a data directory, oldest first, with their sizes. */
export function walSegments(dataDir: string): { name: string; path: string; bytes: number }[] {
  const dir = join(dataDir, "wal");
  return readdirSync(dir)
    .filter((name) => name.endsWith(".wal"))
    .sort()
    .map((name) => ({ name, path: join(dir, name), bytes: statSync(join(dir, name)).size }));
}

/** Total bytes of the WAL segments of a data directory. */
export function walBytesOnDisk(dataDir: string): number {
  return walSegments(dataDir).reduce((sum, s) => sum + s.bytes, 0);
}

/**
 * The "recovered revision …" line a server prints at start, parsed. `checkpoint` is the revision
 * recovery started from before the WAL: the memory engine's checkpoint, the FLSM engine's tables
 * ("tables up to revision N"); undefined when there was none (no checkpoint, no table yet).
 */
export function recoveryLine(output: string): {
  revision: number;
  keys: number;
  checkpoint: number | undefined;
  replayed: number;
} {
  const match =
    /recovered revision (\d+) \((\d+) keys\) in \d+ ms: (?:checkpoint (\d+|none)|tables up to revision (\d+)), (\d+) WAL records replayed/.exec(
      output,
    );
  if (!match) throw new Error(`no recovery line in the server's output:\n${output}`);
  const base = match[3] ?? match[4]!;
  return {
    revision: Number(match[1]),
    keys: Number(match[2]),
    checkpoint: base === "none" || base === "0" ? undefined : Number(base),
    replayed: Number(match[5]),
  };
}
