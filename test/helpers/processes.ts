import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { DEFAULT_GRPC_SERVER, type GrpcServerKind } from "../../src/server/transport.ts";
import { freePorts } from "./free-ports.ts";
import { waitFor } from "./wait.ts";

export const ROOT = resolve(import.meta.dir, "..", "..");

/**
 * Which gRPC server transport the servers of the tests run: the default, or the one named by
 * HOMEKV_TEST_GRPC_SERVER (`npm run test:grpc-js-server` sets grpc-js), which every `homekv serve`
 * started here then gets as HOMEKV_GRPC_SERVER (a flag a test passes still wins). Tests of what
 * differs between the two read it.
 */
const CHOSEN_GRPC_SERVER = process.env.HOMEKV_TEST_GRPC_SERVER || undefined;
export const TEST_GRPC_SERVER = (CHOSEN_GRPC_SERVER ?? DEFAULT_GRPC_SERVER) as GrpcServerKind;
const GRPC_SERVER_ENV: Record<string, string> = CHOSEN_GRPC_SERVER ? { HOMEKV_GRPC_SERVER: CHOSEN_GRPC_SERVER } : {};

/**
 * Which storage engine the servers of the tests run: the default, or the one named by
 * HOMEKV_TEST_ENGINE (`npm run test:flsm` sets flsm). Every `homekv serve` started here, by
 * startServerProcess or runHomekv, then gets it as HOMEKV_ENGINE, with a 64 KiB memtable budget (memtables of
 * about 21 KiB) so that they freeze all the time. As variables, not flags: a flag a test passes wins (a test of --in-memory
 * runs on the memory engine, the only one that keeps nothing on disk).
 */
const CHOSEN_ENGINE = process.env.HOMEKV_TEST_ENGINE || undefined;
const ENGINE_ENV: Record<string, string> = CHOSEN_ENGINE
  ? { HOMEKV_ENGINE: CHOSEN_ENGINE, HOMEKV_MEMTABLE_BYTES: "64KiB" }
  : {};

/** How to run the `homekv` program: from source by default, or a compiled binary. */
export type HomekvCommand = readonly string[];
export const FROM_SOURCE: HomekvCommand = [process.execPath, resolve(ROOT, "src", "main.ts")];

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs one homekv command to completion (bounded by `timeoutMs`) and captures what it printed. */
export function runHomekv(
  args: readonly string[],
  options: { command?: HomekvCommand; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runCommand([...(options.command ?? FROM_SOURCE), ...args], {
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...ENGINE_ENV, ...options.env },
    timeoutMs: options.timeoutMs,
  });
}

/** Runs any program to completion (bounded by `timeoutMs`, 20 s unless said), with `stdin` if given, and captures what it printed. */
export async function runCommand(
  command: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number; stdin?: string } = {},
): Promise<CliResult> {
  const proc = Bun.spawn([...command], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
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

export interface ServerProcessOptions {
  command?: HomekvCommand;
  cwd?: string;
  startTimeoutMs?: number;
  env?: Record<string, string>;
}

/**
 * Starts `homekv serve` on a free loopback port (port 0: the server picks one and says which in its
 * start line, so there is no race between finding a port and binding it). Unless the arguments say
 * where the data goes, each server gets a fresh data directory of its own, removed when it stops.
 */
export async function startServerProcess(
  extraArgs: readonly string[] = [],
  options: ServerProcessOptions = {},
): Promise<ServerProcess> {
  const ownsData = !extraArgs.includes("--data-dir") && !extraArgs.includes("--in-memory") && options.cwd === undefined;
  const scratch = ownsData ? scratchDir("homekv-data-") : undefined;
  const dataArgs = scratch ? ["--data-dir", scratch.path] : [];
  const proc = Bun.spawn(
    [...(options.command ?? FROM_SOURCE), "serve", "--host", "127.0.0.1", "-p", "0", ...dataArgs, ...extraArgs],
    {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: "1", ...GRPC_SERVER_ENV, ...ENGINE_ENV, ...options.env },
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

  const port = await waitFor(
    () => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output);
      if (match) return Number(match[1]);
      if (proc.exitCode !== null) {
        scratch?.cleanup();
        throw new Error(`homekv serve exited with ${proc.exitCode}:\n${output}`);
      }
      return undefined;
    },
    { what: "homekv serve to say where it listens", timeoutMs: options.startTimeoutMs ?? 15_000, detail: () => output },
  ).catch((error: unknown) => {
    proc.kill("SIGKILL");
    scratch?.cleanup();
    throw error;
  });
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

/** TCP socket states as /proc/net/tcp writes them. */
export const TCP_STATE = { ESTABLISHED: "01", LISTEN: "0A" } as const;

/**
 * The TCP sockets of process `pid` (their local port and state), from /proc (Linux): its socket
 * descriptors matched with the rows of /proc/net/tcp and tcp6.
 */
export function tcpSockets(pid: number): { port: number; state: string }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // closed since the listing
    }
  }
  const sockets: { port: number; state: string }[] = [];
  for (const table of ["tcp", "tcp6"]) {
    const rows = readFileSync(`/proc/${pid}/net/${table}`, "utf8").trim().split("\n").slice(1);
    for (const row of rows) {
      // sl local_address rem_address st ... inode; the local port is the address's hex tail.
      const fields = row.trim().split(/\s+/);
      if (inodes.has(fields[9]!))
        sockets.push({ port: Number.parseInt(fields[1]!.split(":")[1]!, 16), state: fields[3]! });
    }
  }
  return sockets;
}

/** The TCP ports process `pid` listens on: for a server that says nothing of where it listens. */
export function listeningPorts(pid: number): number[] {
  return tcpSockets(pid)
    .filter((socket) => socket.state === TCP_STATE.LISTEN)
    .map((socket) => socket.port);
}

/**
 * A static cluster of `names` on loopback (`--initial-cluster`): each member's peer port, and the
 * flags that make `name` a member of it (50 ms Raft ticks: tests wait for elections, not for a LAN's
 * defaults). `peerPorts` may be given to start the same cluster again on its data directories.
 */
export function staticCluster(names: readonly string[], peerPorts: readonly number[] = freePorts(names.length)) {
  const initialCluster = names.map((name, i) => `${name}=127.0.0.1:${peerPorts[i]}`).join(",");
  return {
    peerPorts,
    memberArgs: (name: string): string[] => [
      ...[
        "--node-id",
        name,
        "--peer-port",
        String(peerPorts[names.indexOf(name)]),
        "--initial-cluster",
        initialCluster,
      ],
      ...["--raft-tick", "50ms"],
    ],
  };
}
