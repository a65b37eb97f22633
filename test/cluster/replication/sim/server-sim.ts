import { DurableRaftLog } from "../../../../src/cluster/raft/durable-log.ts";
import type { NodeId } from "../../../../src/cluster/raft/types.ts";
import { foundGroupIfNew } from "../../../../src/cluster/replication/bootstrap.ts";
import { raftIdOf } from "../../../../src/cluster/replication/member-id.ts";
import type { RaftDriver } from "../../../../src/cluster/replication/raft-driver.ts";
import { startReplicatedMember } from "../../../../src/cluster/replication/replicated-member.ts";
import { HomeKvError } from "../../../../src/errors.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../../src/random.ts";
import type { Database } from "../../../../src/storage/database.ts";
import type { ApplyResult } from "../../../../src/storage/ops.ts";
import type { Operation } from "../../../linearizability/history.ts";
import type { KvInput, KvOutput } from "../../../linearizability/kv-model.ts";
import { ProcessFileSystem } from "../../raft/process-fs.ts";
import { type Outcome, overClientLink } from "./client-link.ts";
import type { FaultRates } from "./fault-draw.ts";
import { hash, SeededSimulation } from "./seeded-simulation.ts";
import type { NetworkFaults } from "./sim-network.ts";
import type { Owner } from "./virtual-time.ts";
import { type Answer, execute, KEYS, type Request, RequestSource, writes } from "./workload.ts";

/** Faults of a run; rates are per member (or per cluster for partitions) per virtual second. */
export interface SimFaults extends NetworkFaults, FaultRates {
  /** A stopped or crashed member starts again after up to this long (a clean stop: `db.close()`, a leader hands over first). */
  restartMsMax: number;
  /** A sync of the Raft log takes up to this long. */
  syncMsMax: number;
  /** An answer lost on its way to the client (its connection dropped): the client sees no outcome. */
  answerLostRate: number;
  /** A member checkpoints after this many bytes of commands or entries, and keeps this many entries behind it. */
  checkpointLogBytes: number;
  checkpointLogEntries: number;
  logTailEntries: number;
}

export const HARSH: SimFaults = {
  delayMsMax: 5,
  lateRate: 0.02,
  lateMsMax: 400,
  lostOnBreakRate: 0.5,
  reconnectMsMax: 300,
  crashPerSecond: 0.04,
  stopPerSecond: 0.01,
  restartMsMax: 3_000,
  pausePerSecond: 0.03,
  pauseMsMax: 3_000,
  partitionPerSecond: 0.15,
  partitionMsMax: 4_000,
  resetPerSecond: 0.1,
  syncMsMax: 8,
  answerLostRate: 0.03,
  // Small: logs are compacted often, and members that fell behind catch up by snapshot.
  checkpointLogBytes: 16 * 1024,
  checkpointLogEntries: 150,
  logTailEntries: 20,
};

/** The server's defaults (serve --raft-tick 100, src/node/replicated-database.ts). */
const TICK_MS = 100;
const READ_TIMEOUT_MS = 5_000;
const DIR = "/raft";
const CHECKPOINT_DIR = "/checkpoints";
/** Faults are drawn this often. */
const CHAOS_EVERY_MS = 100;
/** A client waits this long for an answer (its gRPC deadline), then the outcome is unknown to it. */
const CLIENT_DEADLINE_MS = 3_000;
/** A request with a request id is sent at most this often (to another member each time) until answered. */
const ATTEMPTS_MAX = 3;
/** Bounds every run of events (a livelock of timers is a failure, not a hang). */
const EVENTS_PER_VIRTUAL_SECOND_MAX = 20_000;

/** One start of a member's process. */
export interface Incarnation extends Owner {
  readonly generation: number;
  readonly fs: ProcessFileSystem;
  db?: Database;
  driver?: RaftDriver<ApplyResult | undefined>;
  /** The highest revision of a write this process answered: its own reads must see it. */
  ackedRevision: number;
  /** Closing (a clean stop): no other fault hits it meanwhile. */
  stopping: boolean;
}

export interface SimMember {
  readonly id: NodeId;
  readonly name: string;
  /** The member's disk: what survives its crashes. */
  readonly fs: MemoryFileSystem;
  process: Incarnation | undefined;
  generations: number;
}

/** A serializable read as answered: checked against the replicated history at its revision. */
export interface SerializableRead {
  input: KvInput;
  output: KvOutput;
  revision: number;
  member: string;
}

/** A write answered to its client: it must be at the revision the answer names. */
export interface AckedWrite {
  input: KvInput;
  answer: Answer;
}

/**
 * A deterministic simulation of a replicated HomeKV cluster: every member is the real server stack
 * (startReplicatedMember: RaftDriver, the MVCC store as state machine with request ids, writes
 * forwarded over the real peer RPC and peer channels, DurableRaftLog on a MemoryFileSystem) over a
 * simulated peer transport (sim-network.ts) on virtual time (virtual-time.ts). One seed decides
 * every delay, fault and request; a run replays exactly.
 *
 * Faults: crashes (unsynced log writes lost, the last one possibly torn) and restarts from the
 * log, clean stops, pauses, partitions, connection resets, late payloads. Clients issue requests to
 * random members through a simulated client link (delays; a paused member takes them when it
 * resumes) and record what they saw.
 */
export class ServerSimulation extends SeededSimulation<SimFaults> {
  readonly members: SimMember[];
  /** Linearizable operations (writes, linearizable reads) as the clients saw them. */
  readonly history: Operation<KvInput, KvOutput>[] = [];
  readonly serializableReads: SerializableRead[] = [];
  readonly ackedWrites: AckedWrite[] = [];
  readonly counts = { crashes: 0, stops: 0, pauses: 0, partitions: 0, retries: 0, duplicates: 0, unknown: 0 };
  private instant = 0;
  private requestsInFlight = 0;

  constructor(seed: number, size: number, faults: SimFaults, clients = 5) {
    const names = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    super(seed, faults, names, EVENTS_PER_VIRTUAL_SECOND_MAX);
    this.members = names.map((name) => ({
      id: raftIdOf(name),
      name,
      fs: new MemoryFileSystem(),
      process: undefined,
      generations: 0,
    }));
    for (const member of this.members) this.start(member);
    this.drawFaultsEvery(
      CHAOS_EVERY_MS,
      this.members,
      {
        serving: (member) => (member.process?.db === undefined ? undefined : member.process),
        crash: (member) => this.crash(member),
        stop: (member) => this.stop(member),
      },
      this.counts,
    );
    for (let c = 0; c < clients; c++) {
      const source = new RequestSource(c, mulberry32(seed * 1_000 + c));
      this.time.schedule(this.random() * 1_000, () => this.client(c, source));
    }
  }

  /** Runs for `ms` of virtual time with faults and clients on. */
  run(ms: number): Promise<void> {
    return this.runFor(ms);
  }

  /**
   * Ends every fault (partitions healed, every member started) and stops the clients once their
   * requests are answered; then every member must be running, follow one leader and have applied
   * all it committed, within `ms`.
   */
  async heal(ms: number): Promise<void> {
    this.endFaults(this.members, (member) => this.start(member));
    await this.runUntil(() => this.requestsInFlight === 0 && this.converged(), ms, "the cluster to settle");
  }

  /** Each member takes a write and a linearizable read of every key after the heal (liveness, and no acknowledged write lost). */
  async finalRequests(ms: number): Promise<void> {
    for (const member of this.members) {
      const key = `final-${member.name}`;
      this.request(
        `final ${member.name}`,
        { input: { op: "put", records: [{ key, value: member.name }] }, serializable: false, requestId: "" },
        member,
      );
    }
    await this.runUntil(() => this.requestsInFlight === 0, ms, "the final writes");
    for (const member of this.members)
      this.request(
        `final ${member.name}`,
        {
          input: { op: "get", keys: [...KEYS, ...this.members.map((m) => `final-${m.name}`)] },
          serializable: false,
          requestId: "",
        },
        member,
      );
    await this.runUntil(() => this.requestsInFlight === 0 && this.converged(), ms, "the final reads");
    const final = this.history.filter((op) => typeof op.client === "string");
    const missing = final.filter((op) => op.ret === Number.POSITIVE_INFINITY);
    if (missing.length > 0 || final.length < 2 * this.members.length)
      throw new Error(
        `after the heal, a member did not answer a write or a read: ${JSON.stringify(missing.map((op) => op.input))}`,
      );
  }

  /** One leader that every running member follows, and every member has applied all it committed. */
  converged(): boolean {
    const drivers = this.members.map((m) => m.process?.driver);
    if (drivers.some((d) => d === undefined)) return false;
    const leaders = drivers.filter((d) => d!.leads);
    if (leaders.length !== 1) return false;
    const { commitIndex } = leaders[0]!.stats();
    const leaderId = this.members[drivers.indexOf(leaders[0])]!.id;
    return drivers.every((d) => d!.leader === leaderId && d!.appliedIndex === commitIndex);
  }

  /** A digest of the run (events, deliveries, history): two runs of a seed must give the same. */
  fingerprint(): string {
    return this.digest(
      this.members.map((m) => `${m.process?.driver?.appliedIndex}/${m.process?.db?.revision}`).join(","),
      this.history,
    );
  }

  describe(): string {
    return this.members
      .map((m) => {
        const d = m.process?.driver;
        if (!d) return `${m.name} down`;
        const s = d.stats();
        return `${m.name} ${s.role} term ${s.term} leader ${s.leader || "-"} commit ${s.commitIndex} applied ${s.appliedIndex}${m.process!.pausedUntil > this.time.now ? " paused" : ""}`;
      })
      .join("; ");
  }

  private start(member: SimMember): void {
    const generation = ++member.generations;
    const owner: Owner = { alive: true, pausedUntil: 0 };
    const timers = this.time.timersOf(owner);
    const fs = new ProcessFileSystem(
      member.fs,
      () => new Promise((resolve) => timers.after(this.random() * this.faults.syncMsMax, resolve)),
    );
    const process: Incarnation = Object.assign(owner, { generation, fs, ackedRevision: 0, stopping: false });
    member.process = process;
    const report = (what: string, error?: unknown) => {
      if (process.alive)
        this.violations.push(
          `${member.name}: ${what}${error === undefined ? "" : ` ${error instanceof Error ? error.stack : String(error)}`}`,
        );
    };
    const start = async () => {
      // It warns of the torn tail a crash leaves: expected here.
      const raftLog = await DurableRaftLog.open(fs, DIR, () => {});
      if (!process.alive) return;
      // Founded from the list, as `serve --initial-cluster` does (only a log that never had a term).
      const seeds = this.members.map((m) => ({ name: m.name, peerAddress: `sim:${m.name}` }));
      await foundGroupIfNew(raftLog, seeds, "new");
      if (!process.alive) return;
      const transport = this.network.attach(member.name, process);
      const started = await startReplicatedMember({
        self: member.name,
        seeds,
        raftLog,
        transport,
        fs,
        checkpointDir: CHECKPOINT_DIR,
        checkpointLogBytes: this.faults.checkpointLogBytes,
        checkpointLogEntries: this.faults.checkpointLogEntries,
        logTailEntries: this.faults.logTailEntries,
        settings: {
          historyRevisions: Number.POSITIVE_INFINITY,
          expiry: {
            now: () => this.time.now,
            setTimer: (fire, delayMs) => timers.after(delayMs, fire),
            clearTimer: (cancel) => (cancel as () => void)(),
          },
        },
        tickMs: TICK_MS,
        random: mulberry32(hash(`${this.seed}/${member.id}/${generation}`)),
        readTimeoutMs: READ_TIMEOUT_MS,
        log: { info() {}, warn() {}, error: (line, error) => report(line, error) },
        timers,
        async onClose() {
          transport.close();
          await raftLog.close();
        },
      });
      process.db = started.db;
      process.driver = started.driver;
    };
    start().catch((error) => report("did not start:", error));
  }

  /** Power cut: the process is gone at once, its disk keeps what was synced (the last write maybe torn). */
  private crash(member: SimMember): void {
    const process = member.process!;
    process.alive = false;
    process.fs.kill();
    this.network.crashed(member.name);
    member.fs.crash(this.random);
    member.process = undefined;
    this.counts.crashes++;
    this.time.schedule(this.random() * this.faults.restartMsMax, () => this.restart(member));
  }

  /** A clean stop (what SIGTERM does), then a start again later. */
  private stop(member: SimMember): void {
    const process = member.process!;
    const db = process.db!;
    process.stopping = true;
    this.counts.stops++;
    db.close().then(
      () => {
        process.alive = false;
        process.fs.kill();
        this.network.crashed(member.name);
        if (member.process === process) member.process = undefined;
        this.time.schedule(this.random() * this.faults.restartMsMax, () => this.restart(member));
      },
      (error) => this.violations.push(`${member.name} did not stop cleanly: ${error}`),
    );
  }

  private restart(member: SimMember): void {
    if (member.process === undefined) this.start(member);
  }

  private pickMember(): SimMember {
    return this.members[Math.floor(this.random() * this.members.length)]!;
  }

  /** Client `c`: one request at a time, to a random member, a short pause between. */
  private client(c: number, source: RequestSource): void {
    if (!this.clientsActive) return;
    this.request(c, source.next(), undefined).then(() =>
      this.time.schedule(this.random() * 50, () => this.client(c, source)),
    );
  }

  private async request(c: number | string, request: Request, to: SimMember | undefined): Promise<void> {
    this.requestsInFlight++;
    const linearizable = writes(request.input) || !request.serializable;
    const op: Operation<KvInput, KvOutput> = {
      client: c,
      input: request.input,
      call: ++this.instant,
      ret: Number.POSITIVE_INFINITY,
    };
    if (linearizable) this.history.push(op);
    let unknown = false;
    for (let attempt = 1; attempt <= (request.requestId ? ATTEMPTS_MAX : 1); attempt++) {
      if (attempt > 1) {
        this.counts.retries++;
        await new Promise<void>((resolve) => this.time.schedule(50 + this.random() * 300, resolve));
      }
      const outcome = await this.call(to ?? this.pickMember(), request);
      if (outcome.kind === "ok") {
        const answer = outcome.value;
        op.output = answer.output;
        op.ret = ++this.instant;
        if (answer.duplicate) this.counts.duplicates++;
        if (!linearizable)
          this.serializableReads.push({
            input: request.input,
            output: op.output,
            revision: answer.revision,
            member: "",
          });
        if (writes(request.input)) this.ackedWrites.push({ input: request.input, answer });
        this.requestsInFlight--;
        return;
      }
      if (outcome.kind === "unknown") unknown = true;
    }
    // Never answered: a write that may have been applied stays, with no return; the rest never happened.
    if (unknown && writes(request.input)) this.counts.unknown++;
    else if (linearizable) this.history.splice(this.history.indexOf(op), 1);
    this.requestsInFlight--;
  }

  /** One attempt: to the member's current process over a client link, within the client's deadline. */
  private call(member: SimMember, request: Request): Promise<Outcome<Answer>> {
    const process = member.process;
    const db = process?.db;
    return overClientLink(
      this,
      { deadlineMs: CLIENT_DEADLINE_MS, answerLostRate: () => this.faults.answerLostRate },
      db === undefined ? undefined : process,
      async () => {
        const mustSee = process!.ackedRevision;
        const answer = await execute(db!, request);
        if (writes(request.input)) process!.ackedRevision = Math.max(process!.ackedRevision, answer.revision);
        else if (answer.revision < mustSee)
          this.violations.push(
            `${member.name} read at revision ${answer.revision} after answering a write at ${mustSee}: ${JSON.stringify(request)}`,
          );
        return answer;
      },
      (error) => this.classify(member, error),
    );
  }

  private classify(member: SimMember, error: unknown): Outcome<Answer> {
    const why = error instanceof Error ? error.message : String(error);
    if (error instanceof HomeKvError) {
      if (error.code === "E_NOT_LEADER" || error.code === "E_PROPOSAL_DROPPED") return { kind: "refused", why };
      if (error.code === "E_UNAVAILABLE" || error.code === "E_DISK") return { kind: "unknown", why };
    }
    this.violations.push(
      `${member.name} answered with an unexpected error: ${error instanceof Error ? error.stack : why}`,
    );
    return { kind: "unknown", why };
  }
}
