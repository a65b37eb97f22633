import { HomeKvError } from "../../errors.ts";
import { compareKeys } from "../../storage/mvcc/key-order.ts";
import type { RememberedWrite } from "../../storage/request-ids.ts";
import type { PartitionChanges, PartitionRead, PartitionScan, ScanRange, VersionRecord } from "./partition-group.ts";
import {
  LOCK_ONLY,
  type Lock,
  type Mutation,
  type TxnOutcome,
  type TxnStatus,
  type WriteRequest,
} from "./percolator.ts";
import type { TxnCommand } from "./txn-command-format.ts";

/** What a commit did: its timestamp; for a write whose request id was applied before, what that write did instead. */
export interface Committed {
  readonly ts: number;
  readonly duplicate?: RememberedWrite;
}

/**
 * The key a write's request id is kept under: the primary of its transaction, locked (never
 * written) by every attempt, in the partition the id hashes to. Starts with a NUL byte, which the
 * keys people choose seldom do; one that did would only be locked a moment by such a write.
 */
export const requestKey = (id: string) => `\u0000request-id\u0000${id}`;

/** Calls on each partition's leader, wherever it is (the access finds it, and asks again after a change of leader). */
export interface PartitionAccess {
  partitionOf(key: string): number;
  write(
    partition: number,
    mutations: readonly Mutation[],
    readAt?: number,
  ): Promise<{ ts: number; result: TxnOutcome }>;
  read(partition: number, keys: readonly string[], ts: number, bypass: ReadonlySet<number>): Promise<PartitionRead[]>;
  scan(
    partition: number,
    range: ScanRange,
    ts: number,
    limit: number,
    bytesMax: number,
    bypass: ReadonlySet<number>,
  ): Promise<PartitionScan>;
  /** The partition's changes in a range after `after`, as far as resolved below `ts` (PartitionGroup.changes). */
  changes(
    partition: number,
    range: { start?: string; end?: string },
    after: number,
    ts: number,
    size: { limit: number; bytesMax: number; withPrevious: boolean },
  ): Promise<PartitionChanges>;
  /** Compacts the partition below `revision` (short of its open locks); its compacted revision. */
  compact(partition: number, revision: number): Promise<number>;
  propose(partition: number, command: TxnCommand): Promise<TxnOutcome>;
  status(partition: number, primary: string, startTs: number): Promise<TxnStatus>;
  /** What the write of a request id did, if `partition` (the id's home) remembers it. */
  request(partition: number, id: string): Promise<RememberedWrite | undefined>;
}

export interface CoordinatorOptions {
  access: PartitionAccess;
  /** The first of `count` consecutive timestamps (a TimestampClient's). */
  timestamps: (count: number) => Promise<number>;
  /** How long a transaction's locks stand before a reader may roll it back (its coordinator died). */
  lockTtlMs: number;
  /** Wall-clock milliseconds, as the locks' expiries are written. */
  now: () => number;
  /** Waits before a read looks again at a lock of a transaction still open. */
  pause: (ms: number) => Promise<void>;
  /** How long a read waits for open transactions' locks before it gives up (E_UNAVAILABLE). */
  readTimeoutMs: number;
}

/**
 * Runs transactions across partitions (Percolator's client side, docs/internals/partitions.md):
 * writes whose keys share a partition commit in one round there; others in two phases — prewrite on
 * every partition at a start timestamp, the primary's commit at a commit timestamp (that decides),
 * then the secondaries'. Reads take a timestamp and resolve the locks they meet through their
 * primaries, so a read never sees part of a transaction.
 */
export class TxnCoordinator {
  constructor(private readonly options: CoordinatorOptions) {}

  /** A fresh timestamp: above every commit acknowledged before it was asked for. */
  timestamp(): Promise<number> {
    return this.options.timestamps(1);
  }

  /**
   * A fresh timestamp, refusing `revision` (E_FUTURE_REVISION) when it is past it: a read or
   * compaction there could miss a write committed below it later.
   */
  async timestampNotBelow(revision: number | undefined): Promise<number> {
    const now = await this.timestamp();
    if (revision !== undefined && revision > now)
      throw new HomeKvError("E_FUTURE_REVISION", `revision ${revision} is in the future (the newest is ${now})`);
    return now;
  }

  /** The versions of `keys` at `ts` (default: a fresh timestamp, a linearizable read). */
  async get(keys: readonly string[], ts?: number): Promise<{ ts: number; records: VersionRecord[] }> {
    const at = ts ?? (await this.options.timestamps(1));
    const byPartition = this.group(keys.map((key) => ({ key, value: null })));
    const records = new Map<string, VersionRecord>();
    await Promise.all(
      [...byPartition].map(async ([partition, mutations]) => {
        const read = await this.readResolved(
          partition,
          mutations.map((m) => m.key),
          at,
        );
        for (const [i, m] of mutations.entries()) records.set(m.key, read[i]!);
      }),
    );
    return { ts: at, records: keys.map((key) => records.get(key)!) };
  }

  /**
   * Up to `keep` live keys (default `limit`) of `range` at `ts`, `limit` keys and about `bytesMax`
   * of keys and values from each partition at most, in key order (reverse: descending), and
   * `next`, the key to go on after when the range may hold more. Each partition pages its share at `ts`, its
   * locks in the way resolved as a read's are; the pages are merged, and only keys every partition
   * has covered are answered: a partition whose page was cut short at key k (its limit, or the keys
   * it may visit, deleted ones included) may hold keys after k, so the merged page ends at k at most.
   */
  async scan(
    range: ScanRange,
    ts: number,
    size: { limit: number; bytesMax: number; keep?: number },
    partitions: number,
  ): Promise<{ records: (VersionRecord & { key: string })[]; next?: string }> {
    const limit = size.keep ?? size.limit;
    const pages = await Promise.all(
      Array.from({ length: partitions }, (_, partition) => this.scanResolved(partition, range, ts, size)),
    );
    const order = (a: string, b: string) => (range.reverse ? -compareKeys(a, b) : compareKeys(a, b));
    const cuts = pages.flatMap((page) => (page.next === undefined ? [] : [page.next]));
    const bound = cuts.sort(order)[0];
    const merged = pages
      .flatMap((page) => page.records)
      .filter((record) => bound === undefined || order(record.key, bound) <= 0)
      .sort((a, b) => order(a.key, b.key));
    if (merged.length > limit) return { records: merged.slice(0, limit), next: merged[limit - 1]!.key };
    return bound === undefined ? { records: merged } : { records: merged, next: bound };
  }

  /**
   * Compacts every partition's history below `revision` (each short of its open locks); resolves
   * with the lowest compacted revision among them: reads below it fail on every partition.
   */
  async compact(revision: number, partitions: number): Promise<number> {
    const compacted = await Promise.all(
      Array.from({ length: partitions }, (_, partition) => this.options.access.compact(partition, revision)),
    );
    return Math.min(...compacted);
  }

  /** One partition's page of `range` at `ts`, once no lock stands in the way. */
  private scanResolved(
    partition: number,
    range: ScanRange,
    ts: number,
    size: { limit: number; bytesMax: number },
  ): Promise<PartitionScan> {
    return this.resolvedAt(
      partition,
      ts,
      "a scan",
      (bypass) => this.options.access.scan(partition, range, ts, size.limit, size.bytesMax, bypass),
      (page) => page.locks,
    );
  }

  /**
   * Commits `mutations` atomically at one timestamp; returns it. With `readAt` (the timestamp the
   * caller read its inputs at), refused with E_CONFLICT when a key was written since; without, a
   * blind write, refused only while another transaction holds a key.
   *
   * With a `request` id, the write commits at most once: its primary is a lock-only key of the id's
   * own (`requestKey`), in the partition it hashes to, whose commit decides and remembers the id;
   * a transaction of an id remembered there is rolled back, and `duplicate` says what the first did.
   * Always two phases then (even for the keys of one partition): one round would decide elsewhere.
   */
  async commit(mutations: readonly Mutation[], readAt?: number, request?: WriteRequest): Promise<Committed> {
    // With a request id there is the id's own key to commit (a Txn's branch that writes nothing).
    if (mutations.length === 0 && !request) throw new HomeKvError("E_INVALID", "a transaction with nothing to write");
    if (request) {
      const primary: Mutation = { key: requestKey(request.id), value: LOCK_ONLY };
      const byPartition = this.group([primary, ...mutations]);
      const startTs = readAt ?? (await this.options.timestamps(1));
      return this.twoPhase(byPartition, startTs, request).catch((error) => this.appliedBefore(request, error));
    }
    const byPartition = this.group(mutations);
    if (byPartition.size === 1) {
      // Through the partition's commit pipeline, which takes the commit timestamp: one taken here
      // and proposed later could land below the timestamp of a read that already looked.
      const [partition, writes] = [...byPartition][0]!;
      const { ts, result } = await this.options.access.write(partition, writes, readAt);
      return { ts: await this.settled(result, ts) };
    }
    return this.twoPhase(byPartition, readAt ?? (await this.options.timestamps(1)));
  }

  /** Prewrites everywhere; the first mutation's key is the primary, whose commit decides. */
  private async twoPhase(
    byPartition: Map<number, Mutation[]>,
    startTs: number,
    request?: WriteRequest,
  ): Promise<Committed> {
    const { access } = this.options;
    const [primaryPartition, primaryWrites] = [...byPartition][0]!;
    const primary = primaryWrites[0]!.key;
    const expiresAtMs = this.options.now() + this.options.lockTtlMs;
    const prewrites = await Promise.allSettled(
      [...byPartition].map(([partition, writes]) =>
        access.propose(partition, { type: "prewrite", startTs, primary, expiresAtMs, mutations: writes }),
      ),
    );
    const refused = prewrites.find((p) => p.status === "rejected" || !p.value.ok);
    if (refused) {
      await this.rollBack(byPartition, startTs, primaryPartition, primary);
      if (refused.status === "rejected") throw refused.reason;
      return { ts: await this.settled(refused.value, 0) };
    }
    const commitTs = await this.options.timestamps(1);
    const decided = await access.propose(primaryPartition, {
      type: "commit",
      startTs,
      commitTs,
      keys: primaryWrites.map((m) => m.key),
      primary,
      ...(request ? { request } : {}),
    });
    if (!decided.ok) {
      await this.rollBack(byPartition, startTs, primaryPartition, primary);
      if (decided.refusal.kind === "duplicate")
        return { ts: decided.refusal.write.revision, duplicate: decided.refusal.write };
      return { ts: await this.settled(decided, 0) };
    }
    // Decided: the secondaries' commits only tidy up (a reader rolls them forward), so the answer
    // does not wait for them, as Percolator's and TiKV's clients do not: one round less.
    for (const [partition, writes] of byPartition)
      if (partition !== primaryPartition)
        access
          .propose(partition, { type: "commit", startTs, commitTs, keys: writes.map((m) => m.key) })
          .catch(() => {});
    return { ts: commitTs };
  }

  /**
   * A write with a request id refused by others' locks or writes (E_CONFLICT, "nothing of it was
   * applied"), whose id was applied before (its first attempt, answer lost): only the deciding
   * commit sees the id, which a refused prewrite never reaches, so the id's home is asked, and the
   * answer is what the first did. Asked in vain (no leader just then), the conflict stands.
   */
  private async appliedBefore(request: WriteRequest, error: unknown): Promise<Committed> {
    if (!(error instanceof HomeKvError && error.code === "E_CONFLICT")) throw error;
    const { access } = this.options;
    const first = await access.request(access.partitionOf(requestKey(request.id)), request.id).catch(() => undefined);
    if (first === undefined) throw error;
    return { ts: first.revision, duplicate: first };
  }

  /** Decides the transaction rolled back on its primary, then removes its other locks (best effort). */
  private async rollBack(
    byPartition: Map<number, Mutation[]>,
    startTs: number,
    primaryPartition: number,
    primary: string,
  ) {
    const { access } = this.options;
    await access
      .propose(primaryPartition, { type: "rollback", startTs, keys: [primary], decides: true })
      .catch(() => {});
    await Promise.allSettled(
      [...byPartition].map(([partition, writes]) =>
        access.propose(partition, { type: "rollback", startTs, keys: writes.map((m) => m.key), decides: false }),
      ),
    );
  }

  /** Reads `keys` of one partition at `ts`, resolving every lock that stands in the way. */
  private async readResolved(partition: number, keys: readonly string[], ts: number): Promise<VersionRecord[]> {
    const found = await this.resolvedAt(
      partition,
      ts,
      "a read",
      (bypass) => this.options.access.read(partition, keys, ts, bypass),
      (found) => found.flatMap((f, i) => ("lock" in f ? [{ key: keys[i]!, lock: f.lock }] : [])),
    );
    return found.map((f) => ("record" in f ? f.record : undefined)!);
  }

  /**
   * What `fetch` answers at `ts` once it meets no lock (`locksOf`): each lock met is resolved (see
   * `resolve`) and the partition asked again, after a pause while a transaction still open holds
   * one, until the read timeout.
   */
  private async resolvedAt<T>(
    partition: number,
    ts: number,
    what: string,
    fetch: (bypass: ReadonlySet<number>) => Promise<T>,
    locksOf: (answer: T) => readonly { key: string; lock: Lock }[],
  ): Promise<T> {
    const bypass = new Set<number>();
    const deadline = this.options.now() + this.options.readTimeoutMs;
    for (;;) {
      const answer = await fetch(bypass);
      const locks = locksOf(answer);
      if (locks.length === 0) return answer;
      let waiting = false;
      for (const { key, lock } of locks) waiting = (await this.resolve(partition, key, lock, ts, bypass)) || waiting;
      if (!waiting) continue;
      if (this.options.now() > deadline)
        throw new HomeKvError(
          "E_UNAVAILABLE",
          `${what} at ${ts} waited ${this.options.readTimeoutMs} ms for an open transaction`,
        );
      await this.options.pause(10);
    }
  }

  /**
   * What a reader at `ts` does about `lock` on a key of `partition`: rolls it forward (its primary
   * committed at or below ts), reads past it (committed above), rolls it back (rolled back, or past
   * its TTL, whether open on the primary or never prewritten there). True when it must wait: the
   * transaction is within its TTL (TiKV's readers wait out a lock's TTL the same way).
   */
  private async resolve(partition: number, key: string, lock: Lock, ts: number, bypass: Set<number>) {
    const { access } = this.options;
    const primaryPartition = access.partitionOf(lock.primary);
    const status = await access.status(primaryPartition, lock.primary, lock.startTs);
    if (status.state === "committed") {
      if (status.commitTs > ts) bypass.add(lock.startTs);
      else
        await access.propose(partition, {
          type: "commit",
          startTs: lock.startTs,
          commitTs: status.commitTs,
          keys: [key],
        });
      return false;
    }
    // Open, or its primary's prewrite not there yet (the coordinator sends them all at once): a
    // transaction still within its TTL may yet commit, and is waited for rather than aborted.
    const alive = status.state === "open" ? status.lock : status.state === "missing" ? lock : undefined;
    if (alive && alive.expiresAtMs > this.options.now()) return true;
    if (status.state !== "rolled-back") {
      const decided = await access.propose(primaryPartition, {
        type: "rollback",
        startTs: lock.startTs,
        keys: [lock.primary],
        decides: true,
      });
      if (!decided.ok) return false; // committed meanwhile: the next look rolls it forward
    }
    await access.propose(partition, { type: "rollback", startTs: lock.startTs, keys: [key], decides: false });
    return false;
  }

  /** The mutations by partition, in the order their partitions first appear. */
  private group(mutations: readonly Mutation[]): Map<number, Mutation[]> {
    const byPartition = new Map<number, Mutation[]>();
    for (const mutation of mutations) {
      const partition = this.options.access.partitionOf(mutation.key);
      const list = byPartition.get(partition);
      if (list) list.push(mutation);
      else byPartition.set(partition, [mutation]);
    }
    return byPartition;
  }

  /**
   * `ts` when the outcome is ok; E_CONFLICT naming the key otherwise. A lock in the way may be an
   * abandoned transaction's, which only a resolver clears: it is resolved first as a reader would
   * (rolled forward whatever its commit timestamp), so that a retry can go through even on a key
   * nobody reads.
   */
  private async settled(outcome: TxnOutcome, ts: number): Promise<number> {
    if (outcome.ok) return ts;
    const { refusal } = outcome;
    if (refusal.kind === "locked")
      await this.resolve(
        this.options.access.partitionOf(refusal.key),
        refusal.key,
        refusal.lock,
        Number.POSITIVE_INFINITY,
        new Set(),
      ).catch(() => {}); // best effort: the conflict below is the answer either way
    const what =
      refusal.kind === "locked" || refusal.kind === "write-conflict" || refusal.kind === "lock-missing"
        ? `key ${JSON.stringify(refusal.key)}: ${refusal.kind}`
        : `the transaction was ${refusal.kind}`;
    throw new HomeKvError(
      "E_CONFLICT",
      `the transaction was not committed (${what}); nothing of it was applied, retrying may succeed`,
    );
  }
}
