import { REQUEST_IDS_REMEMBERED, type RememberedWrite, RequestIdTable } from "../../storage/request-ids.ts";

/**
 * One partition's side of cross-partition transactions (Percolator, as TiKV does it): locks on keys
 * a transaction is writing, the fate of each transaction whose primary key lives here, and the
 * checks that keep snapshot isolation. Pure and deterministic: every method is what a committed
 * Raft entry does when applied (or, for reads, what a read at a timestamp sees), so every replica
 * agrees. The versions themselves live in a `VersionStore` (the partition's MVCC store).
 *
 * A transaction takes a start timestamp, `prewrite`s its keys on every partition (each key locked,
 * pointing to the primary key), takes a commit timestamp, `commit`s the primary (that decides),
 * then the secondaries. A reader at timestamp R that meets a lock with startTs ≤ R asks the
 * primary's partition `status`: committed at C ≤ R, the reader commits the secondary itself (or
 * waits for it) and reads the version; committed above R, or rolled back, it reads past the lock;
 * open and alive, it waits; open past its TTL, it rolls the transaction back (`rollback` on the
 * primary decides that, as a commit would).
 */

/** The newest-first versions of keys: what a partition's MVCC store provides. */
export interface VersionStore {
  /** The commit timestamp of the key's newest version (0: none). */
  newest(key: string): number;
  /** The value at timestamp `ts` (undefined: none, or deleted). */
  read(key: string, ts: number): Uint8Array | undefined;
  /**
   * Writes the versions of one command at `commitTs` (a null value: a delete), all of them; commitTs
   * is above each key's newest version, though it may be below other keys' (a transaction's
   * secondaries committed late: their locks kept every other version off them meanwhile).
   */
  write(commitTs: number, mutations: readonly Write[]): void;
  /** Makes versions below `revision` unreadable (at most the newest commit); returns the compacted revision. */
  compact(revision: number): number;
  /** Versions at or below it may be gone: nothing can be checked or written there. */
  compactedRevision(): number;
}

/**
 * A mutation's value: bytes to put, null to delete, or LOCK_ONLY: nothing written, the key only
 * locked and checked like the written ones (TiKV's Op::Lock) — a key a transaction read and must not
 * see written before it commits, though it does not write it.
 */
export type MutationValue = Uint8Array | null | typeof LOCK_ONLY;
export const LOCK_ONLY = "lock-only" as const;

export interface Lock {
  readonly startTs: number;
  readonly primary: string;
  readonly value: MutationValue;
  /** Wall-clock milliseconds (the prewriting leader's) after which a reader may roll it back. */
  readonly expiresAtMs: number;
  /** The TTL deadline of the version its commit writes (a put's, Unix ms); absent: none. */
  readonly keyExpiresAtMs?: number;
}

export interface Mutation {
  readonly key: string;
  readonly value: MutationValue;
  /** A put's TTL deadline, Unix ms (WriteOp.expiresAtMs): the key is deleted after it. */
  readonly expiresAtMs?: number;
}

/** A key whose TTL passed, and the revision of the version that set it (the one to delete). */
export interface ExpiringKey {
  readonly key: string;
  readonly revision: number;
}

/** A mutation that writes a version (a put or a delete). */
export interface Write extends Mutation {
  readonly value: Uint8Array | null;
}

const writes = (mutations: Iterable<Mutation>): Write[] =>
  [...mutations].filter((mutation): mutation is Write => mutation.value !== LOCK_ONLY);

/** Why a prewrite, commit or rollback was refused; nothing of it was applied. */
export type TxnRefusal =
  | { readonly kind: "locked"; readonly key: string; readonly lock: Lock }
  | { readonly kind: "write-conflict"; readonly key: string; readonly committedTs: number }
  | { readonly kind: "rolled-back"; readonly startTs: number }
  | { readonly kind: "committed"; readonly startTs: number; readonly commitTs: number }
  | { readonly kind: "lock-missing"; readonly key: string }
  /** The write's request id was applied already (by another transaction): what that one did. */
  | { readonly kind: "duplicate"; readonly write: RememberedWrite };

/**
 * A write's request id (SetRequest.request_id), given to the commit that decides it, with what the
 * write did for a retry of the same id to be answered with.
 */
export interface WriteRequest {
  readonly id: string;
  /** Keys the write deleted (read before it committed). */
  readonly deleted: number;
  /** A transaction's branch. */
  readonly succeeded?: boolean;
}

export type TxnOutcome = { readonly ok: true } | { readonly ok: false; readonly refusal: TxnRefusal };

/** What the primary's partition says of a transaction. */
export type TxnStatus =
  | { readonly state: "committed"; readonly commitTs: number }
  | { readonly state: "rolled-back" }
  | { readonly state: "open"; readonly lock: Lock }
  | { readonly state: "missing" };

/** What a partition keeps beside its versions: what its checkpoints and snapshots carry. */
export interface TxnState {
  readonly locks: readonly (readonly [key: string, lock: Lock])[];
  /** Start timestamp → commit timestamp (0: rolled back). */
  readonly fates: readonly (readonly [startTs: number, commitTs: number])[];
}

const OK: TxnOutcome = { ok: true };
const refuse = (refusal: TxnRefusal): TxnOutcome => ({ ok: false, refusal });

export class TxnPartition {
  private readonly locks = new Map<string, Lock>();
  /** Transactions decided here, by start timestamp: their commit timestamp, or 0 for rolled back. */
  private readonly fates = new Map<number, number>();
  /**
   * The request ids of the writes decided here (this is their home partition), oldest forgotten
   * first; carried in checkpoints beside the locks and fates.
   */
  readonly requestIds: RequestIdTable;

  constructor(
    private readonly versions: VersionStore,
    requestIdsRemembered = REQUEST_IDS_REMEMBERED,
  ) {
    this.requestIds = new RequestIdTable(requestIdsRemembered);
  }

  /** The locks and fates as they stand (a checkpoint's), in no particular order. */
  state(): TxnState {
    return { locks: [...this.locks], fates: [...this.fates] };
  }

  /** Takes `state`'s locks and fates in place of these (a checkpoint loaded, or a leader's snapshot). */
  restore(state: TxnState): void {
    this.locks.clear();
    this.fates.clear();
    for (const [key, lock] of state.locks) this.locks.set(key, lock);
    for (const [startTs, commitTs] of state.fates) this.fates.set(startTs, commitTs);
  }

  /** The lock on `key`, if a transaction holds one. */
  lockOf(key: string): Lock | undefined {
    return this.locks.get(key);
  }

  /**
   * The locks a reader at `ts` must resolve among keys `inRange` (as `read` would meet them), in no
   * particular order. Locks are few (those of transactions in flight): all are looked at.
   */
  locksAt(ts: number, inRange: (key: string) => boolean, bypass?: ReadonlySet<number>): { key: string; lock: Lock }[] {
    const found: { key: string; lock: Lock }[] = [];
    for (const [key, lock] of this.locks) if (blocksReadAt(lock, ts, bypass) && inRange(key)) found.push({ key, lock });
    return found;
  }

  /**
   * `key`'s value at `ts`, or the lock a reader must resolve first: one of a transaction started at
   * or before `ts` (it may commit at or below `ts`), unless the reader found it committed above
   * `ts` (`bypass`: the start timestamps of such transactions).
   */
  read(key: string, ts: number, bypass?: ReadonlySet<number>): { value: Uint8Array | undefined } | { lock: Lock } {
    const lock = this.locks.get(key);
    if (lock && blocksReadAt(lock, ts, bypass)) return { lock };
    return { value: this.versions.read(key, ts) };
  }

  /**
   * Locks `mutations`' keys for the transaction started at `startTs`, all or none: refused when a
   * key is locked by another transaction, when a key has a version committed at or after startTs
   * (another transaction wrote it since this one's snapshot: snapshot isolation's first committer
   * wins), or when this transaction was already decided. Done again (a retry), it changes nothing.
   */
  prewrite(startTs: number, primary: string, mutations: readonly Mutation[], expiresAtMs: number): TxnOutcome {
    const fate = this.fates.get(startTs);
    if (fate !== undefined)
      return refuse(fate === 0 ? { kind: "rolled-back", startTs } : { kind: "committed", startTs, commitTs: fate });
    for (const { key } of mutations) {
      const refusal = this.conflict(key, startTs, startTs);
      if (refusal) return refuse(refusal);
    }
    for (const mutation of mutations) {
      const { key, value } = mutation;
      const ttl = mutation.expiresAtMs === undefined ? {} : { keyExpiresAtMs: mutation.expiresAtMs };
      this.locks.set(key, { startTs, primary, value, expiresAtMs, ...ttl });
    }
    return OK;
  }

  /**
   * A transaction whose keys all live here, in one entry (TiKV's one-phase commit): the versions of
   * `mutations` at `commitTs`, all or none, with prewrite's checks — refused when a key is locked
   * (a transaction in flight may still commit it), or, for a transaction that read at `startTs`,
   * when a key has a version committed at or after startTs. A blind write (no `startTs`: a Set that
   * read nothing) is refused when a key has a version at or after its own timestamp: the same write
   * proposed twice (a retry whose first try was applied), never one the store would have to refuse
   * (an entry that throws where it is applied would stop the group on every replica). A key written
   * twice takes its last value.
   */
  onePhase(startTs: number | undefined, commitTs: number, mutations: readonly Mutation[]): TxnOutcome {
    // A key written twice keeps its last value, as a prewrite's lock does; the store takes each key once.
    const last = new Map(mutations.map((mutation) => [mutation.key, mutation]));
    for (const key of last.keys()) {
      const refusal = this.conflict(key, startTs ?? commitTs);
      if (refusal) return refuse(refusal);
    }
    const written = writes(last.values());
    if (written.length > 0) this.versions.write(commitTs, written);
    return OK;
  }

  /**
   * A TTL's expiry at `commitTs` (a single server's `expire`, as its store applies it): deletes each
   * of `keys` whose newest version is still the one written at its `revision`; a key written since
   * (or deleted) is left alone, whatever the timestamp of the write that came since (a transaction's
   * commit may land below other keys' revisions). Refused, nothing deleted, when a key is locked (a
   * transaction in flight may commit it below commitTs, under the delete, or read it before) or when
   * commitTs is compacted (no write lands there): the sweeper tries again.
   */
  expire(commitTs: number, keys: readonly ExpiringKey[]): TxnOutcome {
    for (const { key } of keys) {
      const lock = this.locks.get(key);
      if (lock) return refuse({ kind: "locked", key, lock });
    }
    const compacted = this.versions.compactedRevision();
    if (commitTs <= compacted)
      return refuse({ kind: "write-conflict", key: keys[0]?.key ?? "", committedTs: compacted });
    const due = keys.filter(({ key, revision }) => revision < commitTs && this.versions.newest(key) === revision);
    if (due.length > 0)
      this.versions.write(
        commitTs,
        due.map(({ key }) => ({ key, value: null })),
      );
    return OK;
  }

  /**
   * Why a transaction that read at `startTs` cannot write `key`: a lock not its own (`own`: its start
   * timestamp, when it may hold one), a version committed at or after startTs, or startTs compacted.
   */
  private conflict(key: string, startTs: number, own?: number): TxnRefusal | undefined {
    const lock = this.locks.get(key);
    if (lock && lock.startTs !== own) return { kind: "locked", key, lock };
    // At or below the compacted revision the versions a check needs may be gone, and whether GC took
    // them yet differs from replica to replica: refused alike everywhere (compaction is in the log).
    const compacted = this.versions.compactedRevision();
    if (startTs <= compacted) return { kind: "write-conflict", key, committedTs: compacted };
    const committedTs = this.versions.newest(key);
    return committedTs >= startTs ? { kind: "write-conflict", key, committedTs } : undefined;
  }

  /**
   * Makes the versions of `keys` at `commitTs` from the transaction's locks, and removes them. With
   * `primary` (on the primary's partition), the commit decides the transaction: refused if it was
   * rolled back, or if the primary's lock is gone (a reader rolled it back). Without, a key whose
   * lock is gone (committed already, or rolled back by a reader after the primary's rollback) is
   * left alone.
   */
  commit(
    startTs: number,
    commitTs: number,
    keys: readonly string[],
    primary?: string,
    request?: WriteRequest,
  ): TxnOutcome {
    const fate = this.fates.get(startTs);
    if (fate === 0) return refuse({ kind: "rolled-back", startTs });
    if (primary !== undefined && fate === undefined) {
      // A write's request id commits once: another transaction of the same id (a client's retry
      // after an unknown outcome) is refused with what the first did.
      const seen = request && this.requestIds.get(request.id);
      if (seen) return refuse({ kind: "duplicate", write: seen });
      if (this.locks.get(primary)?.startTs !== startTs) return refuse({ kind: "lock-missing", key: primary });
      this.fates.set(startTs, commitTs);
      if (request) this.requestIds.remember(request.id, { ...request, revision: commitTs });
    }
    const committed: Mutation[] = [];
    for (const key of keys) {
      const lock = this.locks.get(key);
      if (lock?.startTs !== startTs) continue;
      committed.push({
        key,
        value: lock.value,
        ...(lock.keyExpiresAtMs === undefined ? {} : { expiresAtMs: lock.keyExpiresAtMs }),
      });
      this.locks.delete(key);
    }
    const written = writes(committed);
    if (written.length > 0) this.versions.write(commitTs, written);
    return OK;
  }

  /**
   * Removes the transaction's locks on `keys`. With `decides` (on the primary's partition), it
   * decides the transaction rolled back, unless it was committed: refused then (the caller rolls
   * the secondaries forward instead); a late prewrite is refused from then on.
   */
  rollback(startTs: number, keys: readonly string[], decides: boolean): TxnOutcome {
    const fate = this.fates.get(startTs);
    if (decides) {
      if (fate !== undefined && fate !== 0) return refuse({ kind: "committed", startTs, commitTs: fate });
      this.fates.set(startTs, 0);
    }
    for (const key of keys) if (this.locks.get(key)?.startTs === startTs) this.locks.delete(key);
    return OK;
  }

  /**
   * Compacts history below `revision`, but never to or past the start timestamp of an open lock that
   * writes (TiKV's GC safe point): a transaction in flight commits its secondaries late, above its
   * start, and the store refuses a commit at or below its compacted revision. A lock-only lock's
   * commit writes nothing, so it holds nothing back: the lock of a write's request id, which no
   * reader meets and so none resolves, would hold compaction for good once its coordinator died.
   * Returns the compacted revision.
   */
  compact(revision: number): number {
    let safe = revision;
    for (const lock of this.locks.values()) if (lock.value !== LOCK_ONLY) safe = Math.min(safe, lock.startTs - 1);
    return this.versions.compact(safe);
  }

  /**
   * The transaction's fate, asked of its primary's partition (a read: it changes nothing).
   * "missing": neither decided nor locked here, so the prewrite of the primary has not arrived (it
   * may still): the asker rolls the transaction back (`rollback` deciding), which refuses it later.
   */
  status(primary: string, startTs: number): TxnStatus {
    const fate = this.fates.get(startTs);
    if (fate === 0) return { state: "rolled-back" };
    if (fate !== undefined) return { state: "committed", commitTs: fate };
    const lock = this.locks.get(primary);
    return lock?.startTs === startTs ? { state: "open", lock } : { state: "missing" };
  }
}

/**
 * Whether a reader at `ts` must resolve `lock` first: its transaction started at or before `ts` (it
 * may commit at or below it), is not one the reader found committed above `ts` (`bypass`), and
 * writes the key. A lock-only lock writes nothing: whatever its fate, the key reads the same (TiKV's
 * readers skip Op::Lock locks too).
 */
function blocksReadAt(lock: Lock, ts: number, bypass: ReadonlySet<number> | undefined): boolean {
  return lock.startTs <= ts && lock.value !== LOCK_ONLY && !bypass?.has(lock.startTs);
}
