/**
 * Starts the servers the comparison runs against, each on loopback with its own scratch data
 * directory and comparable durability, and stops every one of them whatever happens.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { connectH2Pool } from "../../src/bench/h2-unary.ts";
import { freePorts } from "../../test/helpers/free-ports.ts";
import { etcdProtocol } from "./etcd-protocol.ts";

export interface RunningServer {
  name: string;
  address: string;
  port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

const running = new Set<RunningServer>();

/** Stops everything still running; also wired to SIGINT/SIGTERM and process exit by `stopAllOnExit`. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

export function stopAllOnExit(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      stopAll().finally(() => process.exit(130));
    });
  }
}

/** A loopback port nothing listens on now, below the ephemeral range (see freePorts). */
export function freePort(): number {
  return freePorts(1)[0] as number;
}

/**
 * Whether `proc` exits within `ms`. The timer is cleared as soon as it does: a pending one would keep
 * this process alive until it fired (a benchmark lingering 10 s after its last server stopped).
 */
async function exitedWithin(proc: Subprocess, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([proc.exited.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, and SIGKILL if it has not exited `graceMs` later (every benchmark's way to stop a child). */
export async function stopProcess(proc: Subprocess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  if (!(await exitedWithin(proc, graceMs))) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
}

/**
 * Registers a server for `stopAll`; `current` gives its process (a member that was restarted has a
 * new one), `dataDir` is removed once it stopped.
 */
export function track(name: string, current: () => Subprocess, port: number, dataDir: string): RunningServer {
  const server: RunningServer = {
    name,
    address: `127.0.0.1:${port}`,
    port,
    get pid() {
      return current().pid;
    },
    async stop() {
      running.delete(server);
      await stopProcess(current());
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  running.add(server);
  return server;
}

export async function waitFor(what: string, ready: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready().catch(() => false)) return;
    await Bun.sleep(100);
  }
  throw new Error(`${what} did not become ready within ${timeoutMs} ms`);
}

const root = resolve(import.meta.dir, "..", "..");

/**
 * HomeKV with --fsync always (the default), from source: this checkout's or `options.checkout`'s,
 * Bun given `options.runtimeArgs` (a CPU profile) and `serve` given `extraArgs`.
 */
export async function startHomekv(
  extraArgs: string[] = [],
  options: { checkout?: string; runtimeArgs?: readonly string[] } = {},
): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-homekv-"));
  const port = freePort();
  const proc = Bun.spawn(
    [
      process.execPath,
      ...(options.runtimeArgs ?? []),
      join(options.checkout ?? root, "src", "main.ts"),
      "serve",
      "-p",
      String(port),
      "--data-dir",
      dataDir,
      "--fsync",
      "always",
      ...extraArgs,
    ],
    {
      stdout: "ignore",
      stderr: "inherit",
    },
  );
  const server = track("homekv", () => proc, port, dataDir);
  await waitFor(
    "homekv",
    async () =>
      (await connectH2Pool(server.address, 1).call("/homekv_service.HomeKvService/Get", new Uint8Array())).status === 0,
  );
  return server;
}

/** The command line of one etcd member with its defaults (an fsync per commit), quiet but for errors. */
export function etcdCommand(member: {
  name: string;
  dataDir: string;
  clientPort: number;
  peerPort: number;
  /** NAME=PEER-URL,... of every member; this member alone when not given. */
  initialCluster?: string;
}): string[] {
  const client = `http://127.0.0.1:${member.clientPort}`;
  const peer = `http://127.0.0.1:${member.peerPort}`;
  return [
    "etcd",
    "--name",
    member.name,
    "--data-dir",
    member.dataDir,
    "--listen-client-urls",
    client,
    "--advertise-client-urls",
    client,
    "--listen-peer-urls",
    peer,
    "--initial-advertise-peer-urls",
    peer,
    "--initial-cluster",
    member.initialCluster ?? `${member.name}=${peer}`,
    "--log-level",
    "error",
  ];
}

/** Whether the server at `address` answers `request` with gRPC status OK within 2 s. */
export async function answersOk(address: string, request: { path: string; message: Uint8Array }): Promise<boolean> {
  const pool = connectH2Pool(address, 1, { timeoutMs: 2_000 });
  try {
    return (await pool.call(request.path, request.message)).status === 0;
  } finally {
    pool.close();
  }
}

/** etcd, single member; it fsyncs every commit by default (its WAL and bbolt). */
export async function startEtcd(): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-etcd-"));
  const [port, peerPort] = [freePort(), freePort()];
  const proc = Bun.spawn(etcdCommand({ name: "bench", dataDir, clientPort: port, peerPort }), {
    stdout: "ignore",
    stderr: "ignore",
  });
  const server = track("etcd", () => proc, port, dataDir);
  await waitFor("etcd", () => answersOk(server.address, etcdProtocol.get(["probe"])));
  return server;
}

/** Redis with appendonly and appendfsync always: an fsync per write, like the other two. */
export async function startRedis(options: { durable: boolean } = { durable: true }): Promise<RunningServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  const port = freePort();
  const persistence = options.durable ? ["--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const proc = Bun.spawn(
    ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--dir", dataDir, "--save", "", ...persistence],
    {
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  const server = track("redis", () => proc, port, dataDir);
  await waitFor(
    "redis",
    async () =>
      Bun.spawnSync(["redis-cli", "-p", String(port), "ping"])
        .stdout.toString()
        .trim() === "PONG",
  );
  return server;
}

/** Debian packages that bring each tool the benchmarks run. */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  etcd: "etcd-server",
  "redis-server": "redis-server",
  "redis-cli": "redis-tools",
  "redis-benchmark": "redis-tools",
  h2load: "nghttp2-client",
};

/** Installs the Debian packages of the tools that are missing (needs root), or says what to do. */
export function ensureInstalled(
  tools: readonly string[] = ["etcd", "redis-server", "redis-benchmark", "redis-cli"],
): void {
  const missing = tools.filter((tool) => Bun.which(tool) === null);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((tool) => PACKAGE_OF[tool] ?? tool))];
  installDebianPackages(packages, `missing: ${missing.join(", ")}`);
  const still = tools.filter((tool) => Bun.which(tool) === null);
  if (still.length > 0)
    throw new Error(`still missing ${still.join(", ")} after apt-get install ${packages.join(" ")}`);
}

/** apt-get installs `packages` (needs root; throws saying what to do otherwise); `why` is logged. */
export function installDebianPackages(packages: readonly string[], why: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${why}: run as root, or apt-get install ${packages.join(" ")}`);
  console.error(`installing ${packages.join(", ")} (${why})`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const command of [
    ["apt-get", "update", "-qq"],
    ["apt-get", "install", "-y", "-qq", ...packages],
  ]) {
    const result = Bun.spawnSync(command, { env, stdout: "ignore", stderr: "inherit", timeout: 600_000 });
    if (result.exitCode !== 0) throw new Error(`${command.join(" ")} failed with exit code ${result.exitCode}`);
  }
}
