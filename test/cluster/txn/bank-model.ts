import { TxnPartition, type VersionStore, type Write } from "../../../src/cluster/txn/percolator.ts";
import { mulberry32 } from "../../../src/random.ts";

/** A partition's versions in memory: each key's (commitTs, value) newest last. */
export class MemoryVersions implements VersionStore {
  private readonly chains = new Map<string, { ts: number; value: Uint8Array | null }[]>();
  /** Reads below it, and commits at or below it, are refused, as the store refuses them. */
  compacted = 0;

  newest(key: string): number {
    return this.chains.get(key)?.at(-1)?.ts ?? 0;
  }

  read(key: string, ts: number): Uint8Array | undefined {
    if (ts < this.compacted) throw new Error(`a read at ${ts}, below the compacted revision ${this.compacted}`);
    const chain = this.chains.get(key) ?? [];
    for (let i = chain.length - 1; i >= 0; i--) if (chain[i]!.ts <= ts) return chain[i]!.value ?? undefined;
    return undefined;
  }

  write(commitTs: number, mutations: readonly Write[]): void {
    if (commitTs <= this.compacted)
      throw new Error(`a commit at ${commitTs}, at or below the compacted revision ${this.compacted}`);
    for (const { key } of mutations)
      if (commitTs <= this.newest(key))
        throw new Error(`${key} written at ${commitTs}, below its newest ${this.newest(key)}`);
    for (const { key, value } of mutations) {
      const chain = this.chains.get(key) ?? [];
      chain.push({ ts: commitTs, value });
      this.chains.set(key, chain);
    }
  }

  compactedRevision(): number {
    return this.compacted;
  }

  compact(revision: number): number {
    const newest = Math.max(0, ...[...this.chains.values()].map((chain) => chain.at(-1)!.ts));
    this.compacted = Math.max(this.compacted, Math.min(revision, newest));
    return this.compacted;
  }
}

const encode = (n: number) => new TextEncoder().encode(String(n));
const decode = (bytes: Uint8Array | undefined) => Number(new TextDecoder().decode(bytes ?? new Uint8Array()));

/** A run's counts, all zero. */
export function emptyRun(): BankRun {
  return {
    transfers: 0,
    committed: 0,
    onePhase: 0,
    aborted: 0,
    abandoned: 0,
    reads: 0,
    rolledForward: 0,
    rolledBack: 0,
  };
}

export interface BankRun {
  transfers: number;
  /** Transfers committed in two phases (accounts on two partitions), and in one (on one). */
  committed: number;
  onePhase: number;
  aborted: number;
  abandoned: number;
  reads: number;
  rolledForward: number;
  rolledBack: number;
}

/**
 * A bank on three partitions, in the abstract (no Raft, no network): clients move money between
 * accounts on different partitions with Percolator transactions, one step at a time in an order a
 * seed decides, and some abandon their transaction at any step (a crashed client: its locks stay
 * until a reader rolls them back past their TTL, or forward if the primary committed). Readers read
 * every account at a fresh timestamp, resolving the locks they meet as a real reader does, and each
 * read that completes must sum to the total. Throws with the seed's story when one does not.
 * `versions` makes each partition's store (default: an in-memory model of one).
 */
export function runBank(
  seed: number,
  steps: number,
  versions: () => VersionStore = () => new MemoryVersions(),
): BankRun {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!;
  const PARTITIONS = 3;
  const ACCOUNTS = 8;
  const TTL_MS = 40;
  const partitions = Array.from({ length: PARTITIONS }, () => new TxnPartition(versions()));
  const accounts = Array.from({ length: ACCOUNTS }, (_, i) => `acct${i}`);
  const home = (key: string) => partitions[Number(key.slice(4)) % PARTITIONS]!;
  let tso = 1;
  let now = 0;
  // The opening balances: one transaction over every partition, committed whole.
  const opening = tso++;
  for (const key of accounts) home(key).prewrite(opening, accounts[0]!, [{ key, value: encode(100) }], Infinity);
  const openingCommit = tso++;
  home(accounts[0]!).commit(opening, openingCommit, [accounts[0]!], accounts[0]!);
  for (const key of accounts.slice(1)) home(key).commit(opening, openingCommit, [key]);
  const total = 100 * ACCOUNTS;
  const run = emptyRun();

  /**
   * Reads `key` at `readTs` as a reader does: a lock of a transaction that may commit at or below
   * readTs is resolved through its primary first (rolled forward if committed at or below readTs,
   * read past if committed above, rolled back if rolled back, missing, or past its TTL). Undefined
   * while an open transaction within its TTL holds it: the reader waits (here: gives up).
   */
  const read = (key: string, readTs: number): number | undefined => {
    const bypass = new Set<number>();
    for (let attempt = 0; attempt < 4; attempt++) {
      const found = home(key).read(key, readTs, bypass);
      if ("value" in found) return decode(found.value);
      const { lock } = found;
      const primaryHome = home(lock.primary);
      const status = primaryHome.status(lock.primary, lock.startTs);
      if (status.state === "committed") {
        if (status.commitTs <= readTs) {
          home(key).commit(lock.startTs, status.commitTs, [key]);
          run.rolledForward++;
        } else bypass.add(lock.startTs);
        continue;
      }
      if (status.state === "open" && status.lock.expiresAtMs > now) return undefined;
      // Rolled back, never prewritten there, or abandoned past its TTL: decided rolled back (a
      // commit that won the race instead is rolled forward on the next attempt).
      if (status.state !== "rolled-back" && !primaryHome.rollback(lock.startTs, [lock.primary], true).ok) continue;
      home(key).rollback(lock.startTs, [key], false);
      run.rolledBack++;
    }
    throw new Error(`seed ${seed}: ${key} still locked after resolving its lock`);
  };

  /** One client's transfer, as a sequence of steps; returns false when it gives up or is done. */
  type Step = () => boolean;
  const transfer = (): Step[] => {
    run.transfers++;
    const [from, to] = [pick(accounts), pick(accounts)];
    if (from === to) return [];
    const startTs = tso++;
    let amount = 0;
    let balances: [number, number] = [0, 0];
    let commitTs = 0;
    const keys = [from, to];
    const abort = (decide: boolean) => {
      if (decide) home(from).rollback(startTs, [from], true);
      for (const key of keys) home(key).rollback(startTs, [key], false);
      run.aborted++;
      return false;
    };
    const readBoth: Step = () => {
      // Read both balances at startTs (a blocked read gives up: the transfer is not made).
      const [fromBalance, toBalance] = keys.map((key) => read(key, startTs));
      if (fromBalance === undefined || toBalance === undefined) return abort(false);
      amount = Math.min(fromBalance, 1 + Math.floor(random() * 30));
      balances = [fromBalance - amount, toBalance + amount];
      return true;
    };
    const mutations = () => [
      { key: from, value: encode(balances[0]) },
      { key: to, value: encode(balances[1]) },
    ];
    // Both accounts on one partition: one entry commits the transfer (one-phase).
    if (home(from) === home(to))
      return [
        readBoth,
        () => {
          const outcome = home(from).onePhase(startTs, tso++, mutations());
          if (outcome.ok) run.onePhase++;
          else run.aborted++;
          return false;
        },
      ];
    return [
      readBoth,
      () => {
        const outcome = home(from).prewrite(startTs, from, [{ key: from, value: encode(balances[0]) }], now + TTL_MS);
        return outcome.ok || abort(true);
      },
      () => {
        const outcome = home(to).prewrite(startTs, from, [{ key: to, value: encode(balances[1]) }], now + TTL_MS);
        return outcome.ok || abort(true);
      },
      () => {
        commitTs = tso++;
        const outcome = home(from).commit(startTs, commitTs, [from], from);
        if (outcome.ok) run.committed++;
        return outcome.ok || abort(false);
      },
      () => {
        home(to).commit(startTs, commitTs, [to]);
        return false;
      },
    ];
  };

  const clients: Step[][] = [];
  for (let step = 0; step < steps; step++) {
    now++;
    const roll = random();
    if (roll < 0.25) clients.push(transfer());
    else if (roll < 0.3 && clients.length > 0) {
      clients.splice(Math.floor(random() * clients.length), 1); // a client crashes mid-transaction
      run.abandoned++;
    } else if (roll < 0.45) {
      const readTs = tso++;
      const balances = accounts.map((key) => read(key, readTs));
      if (balances.every((balance) => balance !== undefined)) {
        const sum = balances.reduce((s, balance) => s + balance, 0);
        run.reads++;
        if (sum !== total)
          throw new Error(`seed ${seed}, step ${step}: a read at ${readTs} sums to ${sum}, not ${total}`);
      }
    } else if (clients.length > 0) {
      const index = Math.floor(random() * clients.length);
      const next = clients[index]!.shift();
      if (next === undefined || !next() || clients[index]!.length === 0) clients.splice(index, 1);
    }
  }
  // Every client gone and every TTL past: a last read resolves whatever locks are left, and sums up.
  now += TTL_MS + 1;
  const finalTs = tso++;
  const sum = accounts.reduce((s, key) => s + read(key, finalTs)!, 0);
  if (sum !== total) throw new Error(`seed ${seed}: the final read sums to ${sum}, not ${total}`);
  run.reads++;
  return run;
}
