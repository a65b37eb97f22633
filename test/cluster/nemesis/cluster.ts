import { mkdirSync, rmSync } from "node:fs";
import { HomeKvClient } from "../../../src/client/client.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../../helpers/processes.ts";
import { LinkProxy } from "./link-proxy.ts";

/** One `homekv serve` member: its data directory outlives its processes (kill -9, restart). */
export class Member {
  /** The running process and a client of it; undefined while the member is down. */
  process: { server: ServerProcess; client: HomeKvClient } | undefined;
  paused = false;
  /** What every incarnation printed, for the report of a failed run. */
  private readonly outputs: string[] = [];

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly peerPort: number,
  ) {}

  get client(): HomeKvClient | undefined {
    return this.process?.client;
  }

  /** The last `chars` characters of what its processes printed, incarnations separated. */
  log(chars = 4_000): string {
    const all = [...this.outputs, this.process?.server.output() ?? ""].join("\n--- restarted ---\n");
    return all.slice(-chars);
  }

  retire(): ServerProcess | undefined {
    const running = this.process;
    if (!running) return undefined;
    running.client.close();
    this.outputs.push(running.server.output());
    this.process = undefined;
    this.paused = false;
    return running.server;
  }
}

export interface ClusterOptions {
  size: number;
  /** --raft-tick in ms. */
  tickMs: number;
  /** Deadline of each client call: longer means fewer unknown outcomes, shorter more operations. */
  callTimeoutMs: number;
  /** --partitions of every member (3 replicas each); undefined: one Raft group. */
  partitions?: number | undefined;
}

/**
 * A replicated cluster of real `homekv serve` processes on loopback, with every peer link through
 * a LinkProxy, and the faults a nemesis applies to it: kill -9 and restart, SIGSTOP and SIGCONT,
 * partitions of the links. Member i's --initial-cluster names its own peer port and, for every
 * other member j, the proxy i→j.
 */
export class Cluster {
  private stopped = false;

  private constructor(
    readonly members: readonly Member[],
    /** A member the group does not have: the membership fault adds it as a learner, then removes it. */
    readonly spare: Member,
    private readonly proxies: ReadonlyMap<string, LinkProxy>,
    private readonly options: ClusterOptions,
    private readonly cleanupDirs: () => void,
  ) {}

  static async start(options: ClusterOptions): Promise<Cluster> {
    const names = Array.from({ length: options.size + 1 }, (_, i) => `n${i + 1}`);
    const peerPorts = freePorts(names.length);
    const dirs = names.map((name) => scratchDir(`homekv-nemesis-${name}-`));
    const all = names.map((name, i) => new Member(name, dirs[i]!.path, peerPorts[i]!));
    const spare = all.pop()!;
    const members = all;
    const proxies = new Map<string, LinkProxy>();
    for (const from of members)
      for (const to of members) if (from !== to) proxies.set(linkKey(from, to), await LinkProxy.open(to.peerPort));
    const cluster = new Cluster(members, spare, proxies, options, () => {
      for (const dir of dirs) dir.cleanup();
    });
    try {
      await Promise.all(members.map((member) => cluster.launch(member)));
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Starts the member's process on its data directory (after a kill, it recovers from its log). */
  async launch(member: Member): Promise<void> {
    if (member.process) throw new Error(`${member.name} is already running`);
    const initialCluster = this.members
      .map((peer) => {
        const port = peer === member ? member.peerPort : this.proxies.get(linkKey(member, peer))!.port;
        return `${peer.name}=127.0.0.1:${port}`;
      })
      .join(",");
    const server = await startServerProcess(
      [
        ...["--node-id", member.name, "--data-dir", member.dir, "--peer-port", String(member.peerPort)],
        ...["--initial-cluster", initialCluster, "--raft-tick", `${this.options.tickMs}ms`],
        ...this.partitionArgs(),
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "nemesis-token" }, startTimeoutMs: 30_000 },
    );
    member.process = {
      server,
      client: new HomeKvClient({ address: server.address, timeoutMs: this.options.callTimeoutMs }),
    };
  }

  /**
   * Starts the spare on an empty data directory as a member of nothing (--initial-cluster-state
   * existing): it waits to be added. Its peers reach it directly, not through a proxy (partitions
   * do not cover it; it is a learner while it is in).
   */
  async launchSpare(): Promise<void> {
    const { spare } = this;
    if (spare.process) throw new Error("the spare is already running");
    rmSync(spare.dir, { recursive: true, force: true });
    mkdirSync(spare.dir, { recursive: true });
    const initialCluster = [...this.members, spare]
      .map(
        (peer) =>
          `${peer.name}=127.0.0.1:${peer === spare ? spare.peerPort : (this.proxies.get(linkKey(spare, peer))?.port ?? peer.peerPort)}`,
      )
      .join(",");
    const server = await startServerProcess(
      [
        ...["--node-id", spare.name, "--data-dir", spare.dir, "--peer-port", String(spare.peerPort)],
        ...["--initial-cluster", initialCluster, "--initial-cluster-state", "existing"],
        ...["--raft-tick", `${this.options.tickMs}ms`],
        ...this.partitionArgs(),
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "nemesis-token" }, startTimeoutMs: 30_000 },
    );
    spare.process = {
      server,
      client: new HomeKvClient({ address: server.address, timeoutMs: this.options.callTimeoutMs }),
    };
  }

  /**
   * --partitions and --replicas, for a partitioned cluster; and checkpoints often (every 16 entries
   * of a partition, 2 kept behind), so that logs are compacted and members restarted, cut off or
   * added catch up by snapshot while the faults go on.
   */
  private partitionArgs(): string[] {
    const { partitions } = this.options;
    if (partitions === undefined) return [];
    return [
      ...["--partitions", String(partitions), "--replicas", "3"],
      ...["--checkpoint-raft-entries", String(16 * partitions), "--raft-log-tail-entries", String(2 * partitions)],
    ];
  }

  /** kill -9: no shutdown, no hand-over; what the disk holds is what it had written. */
  async kill(member: Member): Promise<void> {
    const server = member.retire();
    if (!server) return;
    server.proc.kill("SIGKILL");
    await server.proc.exited;
  }

  pause(member: Member): void {
    if (!member.process || member.paused) return;
    member.process.server.proc.kill("SIGSTOP");
    member.paused = true;
  }

  resume(member: Member): void {
    if (!member.process || !member.paused) return;
    member.process.server.proc.kill("SIGCONT");
    member.paused = false;
  }

  /** Cuts every link between members of different sides; links within a side stay as they are. */
  partition(sides: readonly (readonly Member[])[]): void {
    for (const [i, side] of sides.entries())
      for (const other of sides.slice(i + 1))
        for (const a of side)
          for (const b of other) {
            this.proxies.get(linkKey(a, b))!.sever();
            this.proxies.get(linkKey(b, a))!.sever();
          }
  }

  /** The pairs cut now, as "n1-n2" (for the run's report). */
  cutLinks(): string[] {
    return [...this.proxies].filter(([key, proxy]) => proxy.severed && key < reverseKey(key)).map(([key]) => key);
  }

  healLinks(): void {
    for (const proxy of this.proxies.values()) proxy.heal();
  }

  /** Every link healed, every paused member resumed, every killed member restarted. */
  async healAll(): Promise<void> {
    this.healLinks();
    for (const member of this.members) this.resume(member);
    await Promise.all(this.members.filter((m) => !m.process).map((m) => this.launch(m)));
  }

  /** The member that says it leads, asked of every running member; undefined when none says so now. */
  async leader(): Promise<Member | undefined> {
    const roles = await Promise.all(
      this.members.map(async (member) => {
        if (!member.client || member.paused) return undefined;
        const metrics = await member.client.metrics().catch(() => undefined);
        return metrics?.raftRole === "leader" ? member : undefined;
      }),
    );
    return roles.find((member) => member !== undefined);
  }

  /** Kills every member, closes the proxies, removes the data; again is a no-op. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const member of this.members) this.resume(member);
    await Promise.all([...this.members, this.spare].map((member) => this.kill(member)));
    await Promise.all([...this.proxies.values()].map((proxy) => proxy.close()));
    this.cleanupDirs();
  }
}

const linkKey = (from: Member, to: Member) => `${from.name}-${to.name}`;
const reverseKey = (key: string) => key.split("-").reverse().join("-");
