/**
 * Three-member clusters for the benchmark: HomeKV (`serve --initial-cluster`, `--fsync always`) and
 * etcd (`--initial-cluster`, its default fsync per commit), each member on loopback ports with its
 * own data directory. A member can be killed with SIGKILL and restarted on its data directory (the
 * failover runs do that); every member is stopped by the cluster's `stop` (the leader last) or by
 * `stopAll`, and its directory removed.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { connectH2Pool, type H2Pool } from "../../src/bench/h2-unary.ts";
import { type BenchProtocol, homekvProtocol } from "../../src/bench/workload.ts";
import { MetricsResponse } from "../../src/gen/homekv_service.ts";
import { etcdProtocol, etcdStatus } from "./etcd-protocol.ts";
import { answersOk, etcdCommand, freePort, type RunningServer, track, waitFor } from "./servers.ts";

export interface ClusterMember {
  readonly name: string;
  /** host:port of its client (gRPC) listener. */
  readonly address: string;
  /** The id of its current process (a restart changes it). */
  pid(): number;
  running(): boolean;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  restart(): void;
}

export interface BenchCluster {
  system: "HomeKV" | "etcd";
  protocol: BenchProtocol;
  members: readonly ClusterMember[];
  /** The running member that every running member names as its leader (polled until they agree). */
  leader(): Promise<ClusterMember>;
  /** Resolves once there is an agreed leader and every running member answers a linearizable read. */
  healthy(): Promise<void>;
  /**
   * Stops every member (SIGTERM) and removes its directory, the leader after the others: stopped
   * beside them, it would try to hand its leadership to one that is stopping too (etcd waits 7 s for
   * that); stopped last, it finds no one to hand it to.
   */
  stop(): Promise<void>;
}

/** What one member says of itself and of whom it follows, in the same naming. */
interface LeaderView {
  self: string;
  leader: string;
}

interface ClusterSpec {
  system: BenchCluster["system"];
  protocol: BenchProtocol;
  /** The command line of member `index`, which listens for clients on `ports.client[index]` and for peers on `ports.peer[index]`. */
  command(index: number, ports: { client: number[]; peer: number[] }, dataDir: string): string[];
  view(pool: H2Pool, name: string): Promise<LeaderView>;
}

/** The members of every benchmark cluster, in the order of `BenchCluster.members`. */
export const NAMES: readonly string[] = ["n1", "n2", "n3"];
const LEADER_WAIT_MS = 90_000;
const root = resolve(import.meta.dir, "..", "..");

async function viewOf(spec: ClusterSpec, member: ClusterMember): Promise<LeaderView | undefined> {
  const pool = connectH2Pool(member.address, 1, { timeoutMs: 2_000 });
  try {
    return await spec.view(pool, member.name);
  } catch {
    return undefined;
  } finally {
    pool.close();
  }
}

async function startCluster(spec: ClusterSpec): Promise<BenchCluster> {
  const prefix = `bench-${spec.system.toLowerCase()}-`;
  const ports = { client: [] as number[], peer: [] as number[] };
  for (const _ of NAMES) {
    ports.client.push(freePort());
    ports.peer.push(freePort());
  }
  const servers = new Map<ClusterMember, RunningServer>();
  const members = NAMES.map((name, index) => {
    // The member's scratch directory holds its data directory and its stderr.
    const scratch = mkdtempSync(join(tmpdir(), `${prefix}${name}-`));
    const dataDir = join(scratch, "data");
    const logFile = join(scratch, "stderr.log");
    let proc: Subprocess;
    const spawn = () => {
      proc = Bun.spawn(spec.command(index, ports, dataDir), { stdout: "ignore", stderr: Bun.file(logFile) });
    };
    spawn();
    const member: ClusterMember & { logTail(): string } = {
      name,
      address: `127.0.0.1:${ports.client[index]}`,
      pid: () => proc.pid,
      running: () => proc.exitCode === null && proc.signalCode === null,
      async kill() {
        proc.kill("SIGKILL");
        await proc.exited;
      },
      restart: spawn,
      logTail: () => readFileSync(logFile, "utf8").split("\n").slice(-6).join("\n"),
    };
    servers.set(
      member,
      track(`${spec.system} ${name}`, () => proc, ports.client[index]!, scratch),
    );
    return member;
  });

  const running = () => members.filter((member) => member.running());
  const agreedLeader = async (): Promise<ClusterMember | undefined> => {
    const up = running();
    const views = await Promise.all(up.map((member) => viewOf(spec, member)));
    const leader = views[0]?.leader;
    if (!leader || views.some((view) => view?.leader !== leader)) return undefined;
    return up[views.findIndex((view) => view!.self === leader)];
  };
  const diagnose = () =>
    members.map((member) => `${member.name} (${member.running() ? "running" : "stopped"}):\n${member.logTail()}`);
  const cluster: BenchCluster = {
    system: spec.system,
    protocol: spec.protocol,
    members,
    async leader() {
      let found: ClusterMember | undefined;
      // A restarted member replays its log first: etcd's, after the rounds of batch load, took more than 20 s.
      await waitFor(
        `${spec.system}: one leader named by every running member`,
        async () => {
          found = await agreedLeader();
          return found !== undefined;
        },
        LEADER_WAIT_MS,
      ).catch((error) => {
        throw new Error(`${error.message}; member logs:\n${diagnose().join("\n")}`);
      });
      return found!;
    },
    async healthy() {
      await cluster.leader();
      const probe = spec.protocol.get(["probe"]);
      for (const member of running()) {
        await waitFor(
          `${spec.system} ${member.name} to answer a linearizable read`,
          () => answersOk(member.address, probe),
          LEADER_WAIT_MS,
        );
      }
      // A member that exited (a port taken before it bound it, say) leaves two that look healthy.
      if (running().length < members.length) throw new Error(`a member exited; member logs:\n${diagnose().join("\n")}`);
    },
    async stop() {
      const leader = await agreedLeader();
      const stop = (member: ClusterMember) => servers.get(member)!.stop();
      await Promise.all(members.filter((member) => member !== leader).map(stop));
      if (leader) await stop(leader);
    },
  };
  await cluster.healthy();
  return cluster;
}

const initialCluster = (peerPorts: number[], scheme: string) =>
  NAMES.map((name, i) => `${name}=${scheme}127.0.0.1:${peerPorts[i]}`).join(",");

export interface HomekvClusterOptions {
  /** The checkout whose src/main.ts the members run (another worktree, to compare two versions); this one by default. */
  checkout?: string;
  /** Further `serve` arguments given to every member, e.g. `--grpc-server native`. */
  serveArgs?: readonly string[];
  /** Where each member writes a CPU profile (Bun's markdown profile, `<name>.md`) when it stops; none by default. */
  profileDir?: string;
}

/** Three `homekv serve` members from source, `--fsync always`, the default --raft-tick (100 ms). */
export function startHomekvCluster(options: HomekvClusterOptions = {}): Promise<BenchCluster> {
  return startCluster({
    system: "HomeKV",
    protocol: homekvProtocol,
    command: (index, ports, dataDir) => [
      process.execPath,
      ...(options.profileDir === undefined
        ? []
        : [
            "--cpu-prof",
            "--cpu-prof-interval=200",
            `--cpu-prof-dir=${options.profileDir}`,
            `--cpu-prof-name=${NAMES[index]}.cpuprofile`,
          ]),
      join(options.checkout ?? root, "src", "main.ts"),
      "serve",
      "--node-id",
      NAMES[index]!,
      "-p",
      String(ports.client[index]),
      "--peer-port",
      String(ports.peer[index]),
      "--data-dir",
      dataDir,
      "--initial-cluster",
      initialCluster(ports.peer, ""),
      "--fsync",
      "always",
      ...(options.serveArgs ?? []),
    ],
    async view(pool, name) {
      // Metrics takes google.protobuf.Empty: no bytes.
      const answer = await pool.call("/homekv_service.HomeKvService/Metrics", new Uint8Array());
      if (answer.status !== 0) throw new Error(answer.message);
      return { self: name, leader: MetricsResponse.decode(answer.body).metrics?.raftLeader ?? "" };
    },
  });
}

/** Three etcd members with their defaults (an fsync per commit, 100 ms heartbeat, 1 s election timeout). */
export function startEtcdCluster(): Promise<BenchCluster> {
  return startCluster({
    system: "etcd",
    protocol: etcdProtocol,
    command: (index, ports, dataDir) => [
      ...etcdCommand({
        name: NAMES[index]!,
        dataDir,
        clientPort: ports.client[index]!,
        peerPort: ports.peer[index]!,
        initialCluster: initialCluster(ports.peer, "http://"),
      }),
      "--initial-cluster-state",
      "new",
      "--initial-cluster-token",
      `bench-${ports.peer[0]}`,
    ],
    async view(pool) {
      const { memberId, leader } = await etcdStatus(pool);
      return { self: memberId, leader };
    },
  });
}
