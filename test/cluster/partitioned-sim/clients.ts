import type { PartitionedMember } from "../../../src/node/partitioned-member.ts";
import type { Database } from "../../../src/storage/database.ts";
import type { Compare } from "../../../src/storage/ops.ts";
import type { Operation } from "../../linearizability/history.ts";
import type { KvInput, KvOutput } from "../../linearizability/kv-model.ts";
import type { Outcome } from "../replication/sim/client-link.ts";

/** The bank: accounts whose balances always add up to TOTAL, spread over the partitions by their keys. */
export const ACCOUNTS = Array.from({ length: 8 }, (_, i) => `account-${i}`);
export const OPENING_BALANCE = 100;
export const TOTAL = ACCOUNTS.length * OPENING_BALANCE;
/** The keys of the single-key history, checked for linearizability key by key. */
export const REGISTERS = ["r0", "r1", "r2", "r3"];

/** What a client may ask of a node's process: its database (the API) or the member below it. */
export interface NodeApi {
  db: Database;
  member: PartitionedMember;
}

/** What the clients need of the simulation. */
export interface ClientWorld {
  /** Runs `request` on a random node of the cluster (or `to`), within the client's deadline. */
  call<T>(request: (api: NodeApi) => Promise<T>, to?: string): Promise<Outcome<T>>;
  /** A pause of the client's own, on virtual time. */
  pause(ms: number): Promise<void>;
  /** The next instant of the history's clock (call and return order across clients). */
  instant(): number;
  /** Whether clients still issue requests (not after the heal began). */
  active(): boolean;
  violation(what: string): void;
}

export interface ClientCounts {
  transfers: number;
  transfersRefused: number;
  transfersUnknown: number;
  bankReads: number;
  bankReadsAtRevision: number;
  registerOps: number;
  requestIdRetries: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Requests one client issues at most (a backstop: clients stop when the heal begins). */
const REQUESTS_MAX = 10_000;
/** A write with a request id is sent at most this often, to another node each time, until answered. */
const ATTEMPTS_MAX = 3;

/**
 * The clients of one run: bank clients moving money between two accounts (through a Txn whose
 * compares are the balances read, or the coordinator's commit at the timestamp it read at) and
 * reading the whole bank at one timestamp (fresh, or a revision read before), every read checked
 * to add up; register clients issuing single-key Get, Set (some with request ids, sent again to
 * another node while the outcome is unknown) and Del, recorded as a history.
 */
export class Clients {
  readonly history: Operation<KvInput, KvOutput>[] = [];
  readonly counts: ClientCounts = {
    transfers: 0,
    transfersRefused: 0,
    transfersUnknown: 0,
    bankReads: 0,
    bankReadsAtRevision: 0,
    registerOps: 0,
    requestIdRetries: 0,
  };
  /** Revisions bank reads were answered at: later reads there must add up too. */
  private readonly revisions: number[] = [];
  private running = 0;

  constructor(private readonly world: ClientWorld) {}

  /** Requests under way (the heal waits for them). */
  get inFlight(): number {
    return this.running;
  }

  /** Opens the bank: every account at its opening balance, in one write across partitions (once: a request id). */
  async openBank(attemptsMax: number): Promise<boolean> {
    const ops = ACCOUNTS.map((key) => ({ key, value: encoder.encode(String(OPENING_BALANCE)) }));
    for (let attempt = 0; attempt < attemptsMax; attempt++) {
      const outcome = await this.world.call(({ db }) => db.write(ops, "open-the-bank"));
      if (outcome.kind === "ok") return true;
      await this.world.pause(500);
    }
    return false;
  }

  startBankClient(random: () => number): void {
    this.loop(random, async () => {
      const r = random();
      if (r >= 0.3) return this.transfer(random, r < 0.65 ? "txn" : "commit");
      // A quarter of the reads go back to a revision a read was answered at before.
      const past = this.revisions.length > 0 && random() < 0.25;
      await this.readBank(undefined, past ? this.revisions[Math.floor(random() * this.revisions.length)] : undefined);
    });
  }

  startRegisterClient(client: number, random: () => number): void {
    let seq = 0;
    this.loop(random, async () => {
      const key = REGISTERS[Math.floor(random() * REGISTERS.length)]!;
      const r = random();
      if (r < 0.4) return this.record(client, { op: "get", keys: [key] }, getOf(key));
      if (r < 0.5)
        return this.record(client, { op: "delete", keys: [key] }, async ({ db }) => ({
          deleted: (await db.write([{ key, value: null }])).deleted,
        }));
      const value = `${client}.${++seq}`;
      const requestId = r < 0.7 ? `c${client}-${seq}` : undefined;
      return this.record(
        client,
        { op: "put", records: [{ key, value }] },
        async ({ db }) => {
          await db.write([{ key, value: encoder.encode(value) }], requestId);
          return undefined;
        },
        requestId === undefined ? 1 : ATTEMPTS_MAX,
      );
    });
  }

  /** The final reads of the history, through `node`: one Get per register, after every write answered. */
  async finalReads(node: string): Promise<void> {
    await Promise.all(
      REGISTERS.map((key) => this.record(`final ${node}`, { op: "get", keys: [key] }, getOf(key), 1, node)),
    );
  }

  /**
   * A whole-bank read through `node` (default: any), at a fresh timestamp or at `revision` (one a
   * read was answered at before), which must add up.
   */
  async readBank(node?: string, revision?: number): Promise<boolean> {
    const outcome = await this.world.call(({ db }) => db.get(ACCOUNTS, { revision }), node);
    if (outcome.kind !== "ok") return false;
    const read = outcome.value;
    const balances = read.records.map((record) => (record.value ? Number(decoder.decode(record.value)) : undefined));
    const sum = balances.reduce<number>((total, balance) => total + (balance ?? Number.NaN), 0);
    if (sum !== TOTAL || balances.some((balance) => balance === undefined || balance < 0))
      this.world.violation(
        `a bank read${revision === undefined ? "" : ` at revision ${revision}`} answered at ${read.revision} adds up to ${sum}, not ${TOTAL}: ${JSON.stringify(balances)}`,
      );
    this.counts.bankReads++;
    if (revision === undefined) this.revisions.push(read.revision);
    else this.counts.bankReadsAtRevision++;
    return true;
  }

  /** Moves 1–10 from one account to another: both balances read, both written, or nothing. */
  private async transfer(random: () => number, how: "txn" | "commit"): Promise<void> {
    const from = ACCOUNTS[Math.floor(random() * ACCOUNTS.length)]!;
    const to = ACCOUNTS.filter((account) => account !== from)[Math.floor(random() * (ACCOUNTS.length - 1))]!;
    const amount = 1 + Math.floor(random() * 10);
    const moved = (balances: readonly number[]) => [balances[0]! - amount, balances[1]! + amount];
    const outcome =
      how === "txn"
        ? await this.transferByTxn(from, to, moved)
        : await this.world.call(async ({ member }) => {
            const { coordinator } = member;
            const read = await coordinator.get([from, to]);
            const [a, b] = moved(read.records.map((record) => balanceOf(record.value)));
            if (a! < 0) return false;
            await coordinator.commit(
              [
                { key: from, value: encoder.encode(String(a)) },
                { key: to, value: encoder.encode(String(b)) },
              ],
              read.ts,
            );
            return true;
          });
    if (outcome.kind === "ok" && outcome.value) this.counts.transfers++;
    else if (outcome.kind === "refused") this.counts.transfersRefused++;
    else if (outcome.kind === "unknown") this.counts.transfersUnknown++;
  }

  /** Reads the two balances, then a Txn: if both are still those, write both moved. */
  private async transferByTxn(
    from: string,
    to: string,
    moved: (balances: readonly number[]) => number[],
  ): Promise<Outcome<boolean>> {
    const read = await this.world.call(({ db }) => db.get([from, to]));
    if (read.kind !== "ok") return read;
    const balances = read.value.records.map((record) => balanceOf(record.value));
    const [a, b] = moved(balances);
    if (a! < 0) return { kind: "ok", value: false };
    const compares: Compare[] = [from, to].map((key, i) => ({
      key,
      target: "value",
      op: "==",
      value: encoder.encode(String(balances[i])),
    }));
    const txn = await this.world.call(({ db }) =>
      db.txn({
        compares,
        success: [
          { key: from, value: encoder.encode(String(a)) },
          { key: to, value: encoder.encode(String(b)) },
        ],
        failure: [],
      }),
    );
    return txn.kind === "ok" ? { kind: "ok", value: txn.value.succeeded } : txn;
  }

  /**
   * Runs a single-key request and records it: answered, with its output; refused, left out (it did
   * not happen); unknown, a write stays without a return (it may have happened at any time since),
   * a read is left out. A write with a request id is sent again (to any node) while unknown.
   */
  private async record(
    client: number | string,
    input: KvInput,
    request: (api: NodeApi) => Promise<KvOutput | undefined>,
    attempts = 1,
    node?: string,
  ): Promise<void> {
    const op: Operation<KvInput, KvOutput> = {
      client,
      input,
      call: this.world.instant(),
      ret: Number.POSITIVE_INFINITY,
    };
    this.history.push(op);
    this.counts.registerOps++;
    let unknown = false;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) this.counts.requestIdRetries++;
      const outcome = await this.world.call(request, node);
      if (outcome.kind === "ok") {
        if (outcome.value !== undefined) op.output = outcome.value;
        op.ret = this.world.instant();
        return;
      }
      if (outcome.kind === "unknown") unknown = true;
    }
    if (!unknown || input.op === "get") this.history.splice(this.history.indexOf(op), 1);
  }

  /** One request at a time until the clients stop, a short pause between. */
  private loop(random: () => number, next: () => Promise<void>): void {
    this.running++;
    (async () => {
      for (let i = 0; i < REQUESTS_MAX && this.world.active(); i++) {
        await next();
        await this.world.pause(random() * 50);
      }
    })()
      .catch((error) => this.world.violation(`a client failed: ${error instanceof Error ? error.stack : error}`))
      .finally(() => this.running--);
  }
}

/** A Get of one key, as the history records it. */
function getOf(key: string) {
  return async ({ db }: NodeApi): Promise<KvOutput> => ({
    values: (await db.get([key])).records.map((record) => (record.value ? decoder.decode(record.value) : null)),
  });
}

function balanceOf(value: Uint8Array | undefined): number {
  if (value === undefined) throw new Error("an account of the bank is missing");
  return Number(decoder.decode(value));
}
