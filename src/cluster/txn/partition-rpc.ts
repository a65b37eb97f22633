import { HomeKvError } from "../../errors.ts";
import { type ByteReader, ByteWriter, FormatError, readVersioned } from "../../io/format/bytes.ts";
import type { RememberedWrite } from "../../storage/request-ids.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { NoAnswerError, type PeerRpc } from "../replication/peer-rpc.ts";
import type { PartitionAccess } from "./coordinator.ts";
import type { PartitionGroup, PartitionRead, ScanRange, VersionRecord } from "./partition-group.ts";
import type { Lock, TxnOutcome, TxnRefusal, TxnStatus } from "./percolator.ts";
import { LOCK_ONLY } from "./percolator.ts";
import {
  count,
  decodeTxnCommand,
  encodeTxnCommand,
  flag,
  readKeys,
  readMutations,
  readMutationValue,
  writeKeys,
  writeMutations,
  writeMutationValue,
} from "./txn-command-format.ts";

/**
 * A partition's leader's calls over peer RPC: any node reaches any partition. Frozen once a server
 * speaks it (none does yet), version 1; integers are varints, strings and bytes u32-length-prefixed.
 *
 *   request          u8 version · varint partition · body
 *   txn.write        mutations · u8 hasReadAt · [varint readAt]      → varint ts · outcome
 *   txn.read         varint ts · bypass · keys                       → varint n · n × found (the first n
 *                    keys: what fits ANSWER_BYTES_MAX, one at least)
 *   txn.scan         varint ts · bypass · range · varint limit · varint bytesMax
 *                                                                    → varint n · n × record · u8 hasNext ·
 *                    [string next] · varint m · m × (string key · lock)
 *   txn.changes      start, end (u8 has · [string]) · varint after · varint ts · varint limit ·
 *                    varint bytesMax · u8 withPrevious
 *                                                                    → varint through · varint n · n ×
 *                    (string key · value · u8 hasPrevious · [bytes previous] · varint revision ·
 *                    varint createRevision · varint version) · varint m · m × (string key · lock)
 *   txn.compact      varint revision                                 → varint compacted revision
 *   txn.propose      bytes command (txn-command-format.ts)          → outcome
 *   txn.status       string primary · varint startTs                 → status
 *   txn.request      string request id                               → u8 0 (not remembered) | u8 1 · remembered
 *   txn.members      (nothing)                                       → members (committed, as of a
 *                    ReadIndex round: varint n · n × varint voter, varint m · m × varint learner)
 *   outcome          u8 0 (ok) | u8 1 · u8 kind · fields (1 locked: string key · lock; 2 write-conflict:
 *                    string key · varint committedTs; 3 rolled-back: varint startTs; 4 committed:
 *                    varint startTs · varint commitTs; 5 lock-missing: string key; 6 duplicate: remembered)
 *   remembered       varint revision · varint deleted · u8 succeeded (0 not a transaction, 1 false, 2 true)
 *   lock             varint startTs · string primary · value (as a mutation's) · varint expiresAtMs
 *   found            u8 1 · bytes value · varint modRevision · varint createRevision · varint version |
 *                    u8 2 (none) | u8 3 · lock | u8 4 · as 1 · varint expiresAtMs (a TTL's deadline)
 *   bypass           varint n · n × varint startTs
 *   range            (u8 has · [string]) for start, end and after · u8 reverse
 *   record           string key · bytes value · varint modRevision · varint createRevision · varint version
 *                    · varint expiresAtMs (a TTL's deadline; 0: none)
 *   status           u8 1 · varint commitTs (committed) | u8 2 (rolled back) | u8 3 · lock (open) | u8 4 (missing)
 */
const VERSION = 1;
/**
 * The bytes of keys and values one answer carries at most: well within a peer message (16 MiB),
 * whatever a Get or Scan asks (a read answers the first keys that fit, a scan's page ends there).
 */
export const ANSWER_BYTES_MAX = 4 << 20;
const METHODS = {
  write: "txn.write",
  read: "txn.read",
  scan: "txn.scan",
  changes: "txn.changes",
  compact: "txn.compact",
  propose: "txn.propose",
  status: "txn.status",
  request: "txn.request",
  members: "txn.members",
} as const;
const REFUSALS = ["locked", "write-conflict", "rolled-back", "committed", "lock-missing", "duplicate"] as const;

/** Serves this node's replicas' partitions to the other nodes (their leaders' calls; E_NOT_LEADER elsewhere). */
export function servePartitions(rpc: PeerRpc, groupOf: (partition: number) => PartitionGroup | undefined): void {
  /** Serves `method`: its body read whole by `decode`, then `run` on the partition's replica, writing the answer. */
  const on = <A>(
    method: string,
    decode: (r: ByteReader) => A,
    run: (group: PartitionGroup, args: A, w: ByteWriter) => Promise<void>,
  ) =>
    rpc.handle(method, async (_from, body) => {
      const { partition, args } = readVersioned(body, VERSION, "a partition call", (r) => ({
        partition: r.varint(),
        args: decode(r),
      }));
      const group = groupOf(partition);
      if (group === undefined)
        throw new HomeKvError("E_NOT_LEADER", `this node holds no replica of partition ${partition}`);
      const w = new ByteWriter(64).u8(VERSION);
      await run(group, args, w);
      return w.written().slice();
    });
  on(
    METHODS.write,
    (r) => ({ mutations: readMutations(r), readAt: flag(r) ? r.varint() : undefined }),
    async (group, { mutations, readAt }, w) => {
      const { ts, result } = await group.write(mutations, readAt);
      writeOutcome(w.varint(ts), result);
    },
  );
  on(
    METHODS.read,
    (r) => ({
      ts: r.varint(),
      bypass: readBypass(r),
      keys: readKeys(r),
    }),
    async (group, { ts, bypass, keys }, w) => {
      const found = await group.read(keys, ts, bypass);
      // The first keys whose answers fit one peer message; the caller asks again for the rest.
      let answered = 0;
      for (let bytes = 0; answered < found.length; answered++) {
        const f = found[answered]!;
        bytes += 32 + ("record" in f ? (f.record.value?.byteLength ?? 0) : 0);
        if (answered > 0 && bytes > ANSWER_BYTES_MAX) break;
      }
      w.varint(answered);
      for (const f of found.slice(0, answered)) {
        if ("lock" in f) writeLock(w.u8(3), f.lock);
        else if (f.record.value === undefined) w.u8(2);
        else {
          const { value, modRevision, createRevision, version, expiresAtMs } = f.record;
          w.u8(expiresAtMs === undefined ? 1 : 4)
            .bytes(value)
            .varint(modRevision)
            .varint(createRevision)
            .varint(version);
          if (expiresAtMs !== undefined) w.varint(expiresAtMs);
        }
      }
    },
  );
  on(
    METHODS.scan,
    (r) => ({
      ts: r.varint(),
      bypass: readBypass(r),
      range: readScanRange(r),
      limit: r.varint(),
      bytesMax: r.varint(),
    }),
    async (group, { ts, bypass, range, limit, bytesMax }, w) => {
      const page = await group.scan(range, ts, limit, Math.min(bytesMax, ANSWER_BYTES_MAX), bypass);
      w.varint(page.records.length);
      for (const record of page.records) {
        w.string(record.key).bytes(record.value ?? new Uint8Array());
        w.varint(record.modRevision).varint(record.createRevision).varint(record.version);
        w.varint(record.expiresAtMs ?? 0);
      }
      optionalString(w, page.next);
      w.varint(page.locks.length);
      for (const { key, lock } of page.locks) writeLock(w.string(key), lock);
    },
  );
  on(
    METHODS.changes,
    (r) => ({
      range: { start: readOptionalString(r), end: readOptionalString(r) },
      after: r.varint(),
      ts: r.varint(),
      size: { limit: r.varint(), bytesMax: r.varint(), withPrevious: flag(r) },
    }),
    async (group, { range, after, ts, size }, w) => {
      const page = await group.changes(range, after, ts, {
        ...size,
        bytesMax: Math.min(size.bytesMax, ANSWER_BYTES_MAX),
      });
      w.varint(page.through).varint(page.changes.length);
      for (const change of page.changes) {
        writeMutationValue(w.string(change.key), change.value);
        optionalBytes(w, change.previous);
        w.varint(change.revision).varint(change.createRevision).varint(change.version);
      }
      w.varint(page.locks.length);
      for (const { key, lock } of page.locks) writeLock(w.string(key), lock);
    },
  );
  on(
    METHODS.compact,
    (r) => r.varint(),
    async (group, revision, w) => {
      w.varint(await group.compact(revision));
    },
  );
  on(
    METHODS.propose,
    (r) => decodeTxnCommand(r.bytesCopy()),
    async (group, command, w) => writeOutcome(w, await group.propose(command)),
  );
  on(
    METHODS.status,
    (r) => ({ primary: r.string(), startTs: r.varint() }),
    async (group, { primary, startTs }, w) => {
      const status = await group.status(primary, startTs);
      if (status.state === "committed") w.u8(1).varint(status.commitTs);
      else if (status.state === "rolled-back") w.u8(2);
      else if (status.state === "open") writeLock(w.u8(3), status.lock);
      else w.u8(4);
    },
  );
  on(
    METHODS.request,
    (r) => r.string(),
    async (group, id, w) => {
      const write = await group.requestOf(id);
      if (write === undefined) w.u8(0);
      else writeRemembered(w.u8(1), write);
    },
  );
  on(
    METHODS.members,
    () => undefined,
    async (group, _, w) => writeMembers(w, await group.members()),
  );
}

export interface PeerPartitionAccessOptions {
  rpc: PeerRpc;
  /** This node's replica of a partition, if it holds one: called directly while it leads. */
  local: (partition: number) => PartitionGroup | undefined;
  partitionOf: (key: string) => number;
  /** The other nodes that may lead a partition, the likeliest first (its known leader, then its replicas). */
  candidates: (partition: number) => readonly string[];
  /** One call's wait for an answer. */
  callTimeoutMs: number;
  /** Waits before the candidates are asked again (none leads: an election). */
  pause: () => Promise<void>;
  /** Rounds over the candidates before the call fails. */
  rounds: number;
}

/**
 * PartitionAccess over peer RPC: each call goes to the partition's leader — this node's replica when
 * it leads, else found among the candidates, asked in turn (a follower answers E_NOT_LEADER) — again
 * after a pause while none leads.
 */
export function peerPartitionAccess(
  options: PeerPartitionAccessOptions,
): PartitionAccess & { members(partition: number): Promise<ConfState> } {
  const retried = (error: unknown) =>
    error instanceof HomeKvError && (error.code === "E_NOT_LEADER" || error.code === "E_UNAVAILABLE");
  /**
   * A one-round write sent and not answered may have run there: sent again it would commit a second
   * time (at another timestamp), so its outcome is reported unknown instead. Every other call is
   * safe to send again (reads, and proposals that change nothing when repeated).
   */
  const unknownOutcome = (method: string, error: unknown) =>
    method === METHODS.write && error instanceof NoAnswerError
      ? new HomeKvError(
          "E_UNAVAILABLE",
          `partition leader did not answer a write in time: it may or may not have been applied (${error.message})`,
        )
      : undefined;
  const call = async <T>(
    partition: number,
    direct: (group: PartitionGroup) => Promise<T>,
    method: string,
    body: (w: ByteWriter) => void,
    read: (r: ByteReader) => T,
  ): Promise<T> => {
    const request = new ByteWriter(64).u8(VERSION).varint(partition);
    body(request);
    const bytes = request.written().slice();
    let last: unknown;
    for (let round = 0; round < options.rounds; round++) {
      const local = options.local(partition);
      if (local?.driver.leads) {
        try {
          return await direct(local);
        } catch (error) {
          if (!retried(error)) throw error;
          last = error;
        }
      }
      for (const node of options.candidates(partition)) {
        try {
          const answer = await options.rpc.call(node, method, bytes, options.callTimeoutMs);
          return readVersioned(answer, VERSION, "a partition answer", read);
        } catch (error) {
          const unknown = unknownOutcome(method, error);
          if (unknown) throw unknown;
          if (!retried(error)) throw error;
          last = error;
        }
      }
      await options.pause();
    }
    throw last ?? new HomeKvError("E_UNAVAILABLE", `no node holds partition ${partition}`);
  };
  return {
    partitionOf: options.partitionOf,
    write: (partition, mutations, readAt) =>
      call(
        partition,
        (group) => group.write(mutations, readAt),
        METHODS.write,
        (w) => {
          writeMutations(w, mutations);
          w.u8(readAt === undefined ? 0 : 1);
          if (readAt !== undefined) w.varint(readAt);
        },
        (r) => ({ ts: r.varint(), result: readOutcome(r) }),
      ),
    async read(partition, keys, ts, bypass) {
      // An answer holds the first keys that fit one message: the rest are asked for again, at the same timestamp.
      const found: PartitionRead[] = [];
      while (found.length < keys.length) {
        const rest = keys.slice(found.length);
        const part = await call(
          partition,
          (group) => group.read(rest, ts, bypass),
          METHODS.read,
          (w) => {
            writeBypass(w.varint(ts), bypass);
            writeKeys(w, rest);
          },
          // A key found missing takes one byte.
          (r) => Array.from({ length: count(r, 1) }, () => readFound(r)),
        );
        if (part.length === 0) throw new FormatError(`a partition answered none of ${rest.length} keys`);
        found.push(...part);
      }
      return found;
    },
    scan: (partition, range, ts, limit, bytesMax, bypass) =>
      call(
        partition,
        (group) => group.scan(range, ts, limit, bytesMax, bypass),
        METHODS.scan,
        (w) => {
          writeBypass(w.varint(ts), bypass);
          writeScanRange(w, range);
          w.varint(limit).varint(bytesMax);
        },
        (r) => ({
          // Each record takes at least its key's and value's lengths and four varints.
          records: Array.from({ length: count(r, 12) }, () => {
            const record = {
              key: r.string(),
              value: r.bytesCopy(),
              modRevision: r.varint(),
              createRevision: r.varint(),
              version: r.varint(),
            };
            const expiresAtMs = r.varint();
            return expiresAtMs === 0 ? record : { ...record, expiresAtMs };
          }),
          next: readOptionalString(r),
          locks: Array.from({ length: count(r, 4) }, () => ({ key: r.string(), lock: readLock(r) })),
        }),
      ),
    changes: (partition, range, after, ts, size) =>
      call(
        partition,
        (group) => group.changes(range, after, ts, size),
        METHODS.changes,
        (w) => {
          optionalString(w, range.start);
          optionalString(w, range.end);
          w.varint(after)
            .varint(ts)
            .varint(size.limit)
            .varint(size.bytesMax)
            .u8(size.withPrevious ? 1 : 0);
        },
        (r) => ({
          through: r.varint(),
          // Each change takes at least its key's length, its kind, a flag and three varints.
          changes: Array.from({ length: count(r, 9) }, () => {
            const key = r.string();
            const value = readMutationValue(r);
            if (value === LOCK_ONLY) throw new FormatError("a change that writes nothing");
            const previous = readOptionalBytes(r);
            return { key, value, previous, revision: r.varint(), createRevision: r.varint(), version: r.varint() };
          }),
          locks: Array.from({ length: count(r, 4) }, () => ({ key: r.string(), lock: readLock(r) })),
        }),
      ),
    compact: (partition, revision) =>
      call(
        partition,
        (group) => group.compact(revision),
        METHODS.compact,
        (w) => w.varint(revision),
        (r) => r.varint(),
      ),
    propose: (partition, command) =>
      call(
        partition,
        (group) => group.propose(command),
        METHODS.propose,
        (w) => w.bytes(encodeTxnCommand(command)),
        readOutcome,
      ),
    status: (partition, primary, startTs) =>
      call(
        partition,
        (group) => group.status(primary, startTs),
        METHODS.status,
        (w) => w.string(primary).varint(startTs),
        readStatus,
      ),
    request: (partition, id) =>
      call(
        partition,
        (group) => group.requestOf(id),
        METHODS.request,
        (w) => w.string(id),
        (r) => (flag(r) ? readRemembered(r) : undefined),
      ),
    /** The partition's members as its leader knows them: whether a replica placed elsewhere may go. */
    members: (partition) =>
      call(
        partition,
        async (group) => group.members(),
        METHODS.members,
        () => {},
        (r) => ({ voters: readIds(r), learners: readIds(r) }),
      ),
  };
}

function writeMembers(w: ByteWriter, conf: ConfState): void {
  for (const ids of [conf.voters, conf.learners]) {
    w.varint(ids.length);
    for (const id of ids) w.varint(id);
  }
}

function readIds(r: ByteReader): NodeId[] {
  return Array.from({ length: count(r, 1) }, () => r.varint());
}

function writeOutcome(w: ByteWriter, outcome: TxnOutcome): void {
  if (outcome.ok) {
    w.u8(0);
    return;
  }
  const { refusal } = outcome;
  w.u8(1).u8(REFUSALS.indexOf(refusal.kind) + 1);
  switch (refusal.kind) {
    case "locked":
      writeLock(w.string(refusal.key), refusal.lock);
      break;
    case "write-conflict":
      w.string(refusal.key).varint(refusal.committedTs);
      break;
    case "rolled-back":
      w.varint(refusal.startTs);
      break;
    case "committed":
      w.varint(refusal.startTs).varint(refusal.commitTs);
      break;
    case "lock-missing":
      w.string(refusal.key);
      break;
    case "duplicate":
      writeRemembered(w, refusal.write);
      break;
  }
}

/** What a write with a request id did (a duplicate's refusal, a `txn.request` answer). */
function writeRemembered(w: ByteWriter, { revision, deleted, succeeded }: RememberedWrite): void {
  w.varint(revision)
    .varint(deleted)
    .u8(succeeded === undefined ? 0 : succeeded ? 2 : 1);
}

function readRemembered(r: ByteReader): RememberedWrite {
  const revision = r.varint();
  const deleted = r.varint();
  const at = r.position;
  const succeeded = r.u8();
  if (succeeded > 2) throw new FormatError(`a request's outcome of ${succeeded} at byte ${at}`);
  return { revision, deleted, ...(succeeded === 0 ? {} : { succeeded: succeeded === 2 }) };
}

function readOutcome(r: ByteReader): TxnOutcome {
  if (!flag(r)) return { ok: true };
  const at = r.position;
  const kind = REFUSALS[r.u8() - 1];
  let refusal: TxnRefusal;
  switch (kind) {
    case "locked":
      refusal = { kind, key: r.string(), lock: readLock(r) };
      break;
    case "write-conflict":
      refusal = { kind, key: r.string(), committedTs: r.varint() };
      break;
    case "rolled-back":
      refusal = { kind, startTs: r.varint() };
      break;
    case "committed":
      refusal = { kind, startTs: r.varint(), commitTs: r.varint() };
      break;
    case "lock-missing":
      refusal = { kind, key: r.string() };
      break;
    case "duplicate":
      refusal = { kind, write: readRemembered(r) };
      break;
    default:
      throw new FormatError(`unknown refusal at byte ${at}`);
  }
  return { ok: false, refusal };
}

function writeLock(w: ByteWriter, lock: Lock): void {
  w.varint(lock.startTs).string(lock.primary);
  writeMutationValue(w, lock.value);
  w.varint(lock.expiresAtMs);
}

function readLock(r: ByteReader): Lock {
  const startTs = r.varint();
  const primary = r.string();
  const value = readMutationValue(r);
  return { startTs, primary, value, expiresAtMs: r.varint() };
}

function writeBypass(w: ByteWriter, bypass: ReadonlySet<number>): void {
  w.varint(bypass.size);
  for (const startTs of bypass) w.varint(startTs);
}

function readBypass(r: ByteReader): Set<number> {
  return new Set(Array.from({ length: count(r, 1) }, () => r.varint()));
}

function optionalString(w: ByteWriter, value: string | undefined): void {
  w.u8(value === undefined ? 0 : 1);
  if (value !== undefined) w.string(value);
}

function readOptionalString(r: ByteReader): string | undefined {
  return flag(r) ? r.string() : undefined;
}

function optionalBytes(w: ByteWriter, value: Uint8Array | undefined): void {
  w.u8(value === undefined ? 0 : 1);
  if (value !== undefined) w.bytes(value);
}

function readOptionalBytes(r: ByteReader): Uint8Array | undefined {
  return flag(r) ? r.bytesCopy() : undefined;
}

function writeScanRange(w: ByteWriter, range: ScanRange): void {
  optionalString(w, range.start);
  optionalString(w, range.end);
  optionalString(w, range.after);
  w.u8(range.reverse ? 1 : 0);
}

function readScanRange(r: ByteReader): ScanRange {
  const [start, end, after] = [readOptionalString(r), readOptionalString(r), readOptionalString(r)];
  return { start, end, after, reverse: flag(r) };
}

const MISSING: VersionRecord = { value: undefined, modRevision: 0, createRevision: 0, version: 0 };

function readFound(r: ByteReader): PartitionRead {
  const at = r.position;
  const kind = r.u8();
  if (kind === 1 || kind === 4) {
    const record = { value: r.bytesCopy(), modRevision: r.varint(), createRevision: r.varint(), version: r.varint() };
    return { record: kind === 4 ? { ...record, expiresAtMs: r.varint() } : record };
  }
  if (kind === 2) return { record: MISSING };
  if (kind === 3) return { lock: readLock(r) };
  throw new FormatError(`unknown read result ${kind} at byte ${at}`);
}

function readStatus(r: ByteReader): TxnStatus {
  const at = r.position;
  const state = r.u8();
  if (state === 1) return { state: "committed", commitTs: r.varint() };
  if (state === 2) return { state: "rolled-back" };
  if (state === 3) return { state: "open", lock: readLock(r) };
  if (state === 4) return { state: "missing" };
  throw new FormatError(`unknown transaction state ${state} at byte ${at}`);
}
