import { assert, describeError, HomeKvError } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";
import type { BackupInfo } from "../../storage/backup/backup-dir.ts";
import { assembleDatabase, type Database, type ObservedStore } from "../../storage/database.ts";
import type { CommitLog } from "../../storage/log/commit-log.ts";
import type { WriteView } from "../../storage/mvcc/store.ts";
import type { ApplyResult, Command } from "../../storage/ops.ts";
import { RequestIdTable } from "../../storage/request-ids.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { Entry, NodeId } from "../raft/types.ts";
import { decodeEntryCommand, encodeEntryCommand } from "./entry-command.ts";
import {
  decodeForwardAnswer,
  decodeForwardBatch,
  encodeForwardAnswer,
  encodeForwardBatch,
} from "./forward-batch-format.ts";
import { ForwardBatches } from "./forward-batches.ts";
import { ForwardedWrites } from "./forwarded-writes.ts";
import {
  catchUpForCheckpoint,
  type MemberCheckpoints,
  type StoreCheckpoints,
  withCheckpoints,
} from "./member-checkpoints.ts";
import { NoAnswerError, type PeerRpc } from "./peer-rpc.ts";
import type { RaftDriver, ReplicatedStateMachine } from "./raft-driver.ts";

/** How long a leader that stops waits for another member to take over before it just goes. */
const HAND_OFF_TIMEOUT_MS = 2_000;
/** The peer method a follower forwards writes with (forward-batch-format.ts); answered with where the leader put them. */
const PROPOSE_METHOD = "propose-batch";

/** What the store's state machine shares with the log in front of it. */
export interface StoreReplica {
  /** This member's Raft id: entries that name it as their origin answer a write forwarded from here. */
  readonly self: NodeId;
  readonly requestIds: RequestIdTable;
  readonly forwarded: ForwardedWrites<ApplyResult | undefined>;
}

/**
 * Sequence numbers of a process's forwarded writes start at random below this (2^48): two
 * processes of one member collide only if their ranges overlap, about 2 in 2^48 per write forwarded.
 */
const FIRST_SEQ_SPAN = 2 ** 48;

/** `random` picks where this process's forwarded writes are numbered from (forwarded-writes.ts). */
export function storeReplica(
  self: NodeId,
  forwardTimeoutMs: number,
  timers: Timers = realTimers,
  random: () => number = Math.random,
): StoreReplica {
  const firstSeq = 1 + Math.floor(random() * FIRST_SEQ_SPAN);
  return {
    self,
    requestIds: new RequestIdTable(),
    forwarded: new ForwardedWrites(forwardTimeoutMs, timers, firstSeq),
  };
}

/**
 * The MVCC store as a Raft group's state machine. An entry's data is a command (entry-command.ts);
 * its revision is stamped when it is applied, one after the store's, so revisions stay dense: the
 * leader's empty entries, membership changes and repeated request ids take none.
 *
 * With `checkpoints`, entries the checkpoint the store was loaded from covers are passed over (the
 * log may start before it), and a leader's snapshot is installed from its checkpoint. State that
 * must survive a restart beside the store goes into those checkpoints (member-checkpoints.ts).
 */
export function storeStateMachine(
  store: WriteView,
  replica: StoreReplica,
  checkpoints?: StoreCheckpoints,
): ReplicatedStateMachine<ApplyResult | undefined> {
  const machine: ReplicatedStateMachine<ApplyResult | undefined> = {
    apply(entry: Entry) {
      let result: ApplyResult | undefined;
      let seq: number | undefined;
      if (entry.data !== null) {
        // Every member applies what the entry's bytes say, the leader included: a command object
        // the leader kept could differ from its encoding in a default, and the members would part.
        const decoded = decodeEntryCommand(entry.data);
        const { requestId } = decoded;
        // The table is replicated state (fed here, in log order; carried in checkpoints and
        // snapshots), so every member skips the same repeats.
        const seen = requestId === "" ? undefined : replica.requestIds.get(requestId);
        if (seen) result = { ...seen, duplicate: true };
        else {
          result = store.apply({ ...decoded.command, revision: store.revision + 1 });
          if (requestId !== "") replica.requestIds.remember(requestId, result);
        }
        if (decoded.origin === replica.self) seq = decoded.seq;
      }
      replica.forwarded.applied(entry, seq, result);
      return result;
    },
    restore(snapshot) {
      replica.forwarded.overtaken(snapshot.index);
      assert(checkpoints !== undefined, "a Raft snapshot reached a store kept without checkpoints");
    },
  };
  return checkpoints ? withCheckpoints(machine, checkpoints) : machine;
}

/** A forwarded entry must decode, and name as its origin the member that forwarded it. */
function checkForwarded(data: Uint8Array, from: string, nameOf: (id: NodeId) => string | undefined): void {
  const { origin } = invalidUnlessDecodes(() => decodeEntryCommand(data));
  if (nameOf(origin) !== from)
    throw new HomeKvError("E_INVALID", `member ${from} forwarded a write in the name of node ${origin}`);
}

/** A forwarded write that does not decode is refused (E_INVALID), never taken for a bug here. */
function invalidUnlessDecodes<T>(decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof FormatError)
      throw new HomeKvError("E_INVALID", `a forwarded write does not decode: ${error.message}`);
    throw error;
  }
}

/**
 * The log layer of a replicated database: `propose` orders the command through the Raft group and
 * resolves with what the store returned once the entry is applied on this member. The leader
 * proposes itself; a follower forwards the command to the leader over peer RPC and answers once it
 * has applied the entry (so a read here right after sees the write).
 */
function raftCommitLog(options: {
  driver: RaftDriver<ApplyResult | undefined>;
  replica: StoreReplica;
  rpc: PeerRpc;
  nameOf: (id: NodeId) => string | undefined;
  /** Whether this member's connection to a member is up now (a killed leader's is not). */
  reachable: (id: NodeId) => boolean;
  forwardTimeoutMs: number;
  log: (line: string) => void;
  timers: Timers;
}): CommitLog<ApplyResult> {
  const { driver, replica, rpc } = options;
  // The leader side of forwarding: take the follower's entries as they are (each names its origin)
  // and say where they went; the follower waits for each to be applied there.
  rpc.handle(PROPOSE_METHOD, async (from, body) => {
    const entries = invalidUnlessDecodes(() => decodeForwardBatch(body));
    // Checked here, not at apply: a damaged entry must never reach the log.
    for (const data of entries) checkForwarded(data, from, options.nameOf);
    // All at once (one append to the log, all or none): a refusal fails the call, for every entry.
    const first = driver.submitAll(entries);
    return encodeForwardAnswer({ firstIndex: first.index, term: first.term, accepted: entries.length });
  });
  // The follower side: the writes of one turn go to the leader in one call (forward-batches.ts).
  const batches = new ForwardBatches((leader, batch) => {
    const body = encodeForwardBatch(batch.map((write) => write.data));
    // The leader answers at once (where the entries went); the wait for them to be applied is longer.
    rpc.call(leader, PROPOSE_METHOD, body, options.forwardTimeoutMs / 2).then(
      (answer) => {
        let decoded: ReturnType<typeof decodeForwardAnswer>;
        try {
          decoded = decodeForwardAnswer(answer, batch.length);
        } catch (error) {
          // Where they went is not known: like no answer, the waiters stay until applied or timed out.
          options.log(`an answer of member ${leader} to forwarded writes does not decode: ${describeError(error)}`);
          return;
        }
        const { firstIndex, term, accepted, refusal } = decoded;
        batch.forEach(({ seq }, i) => {
          if (i < accepted) replica.forwarded.located(seq, firstIndex + i, term, driver.appliedIndex);
          else replica.forwarded.refused(seq, refusal);
        });
      },
      (error: unknown) => {
        // No answer: they may have been proposed, so the waiters stay until applied or timed out.
        if (!(error instanceof NoAnswerError)) for (const { seq } of batch) replica.forwarded.refused(seq, error);
      },
    );
  });
  const proposeHere = (command: Command, requestId: string) =>
    driver.propose(encodeEntryCommand({ origin: 0, seq: 0, requestId, command }));
  const forward = (command: Command, requestId: string, leader: string) => {
    const { seq, done } = replica.forwarded.open(leader);
    batches.add(leader, { seq, data: encodeEntryCommand({ origin: replica.self, seq, requestId, command }) });
    return done;
  };
  /**
   * The leader to order a write now: during an election, or while the leader this member knows is
   * unreachable (killed, cut off), the write waits for the group to settle — a bounded number of
   * ticks — instead of failing, so that a client sees a slower answer rather than an error.
   */
  const settledLeader = async (): Promise<NodeId> => {
    const deadline = options.timers.now() + options.forwardTimeoutMs / 2;
    for (;;) {
      const leader = driver.leader;
      if (leader === replica.self || (leader !== 0 && options.reachable(leader))) return leader;
      if (options.timers.now() >= deadline)
        throw new HomeKvError(
          "E_NOT_LEADER",
          leader === 0
            ? "no leader was elected in time to take the write (it was not applied)"
            : `the leader, member ${options.nameOf(leader)}, is not reachable from this member (the write was not applied)`,
        );
      await driver.nextTick();
    }
  };
  return {
    async propose(command, requestId = "") {
      const leader = await settledLeader();
      const leaderName = leader === replica.self ? undefined : options.nameOf(leader);
      const result = await (leaderName === undefined
        ? proposeHere(command, requestId)
        : forward(command, requestId, leaderName));
      assert(result !== undefined, "a command's entry applied as an empty one");
      return result;
    },
    async close() {
      // A leader hands over first, so that the others need not wait out an election timeout.
      const wasLeader = driver.leads;
      const handedOver = await driver.handOff(HAND_OFF_TIMEOUT_MS);
      if (wasLeader)
        options.log(
          handedOver
            ? "handed leadership over before stopping"
            : `stopping as the leader: no member took over within ${HAND_OFF_TIMEOUT_MS} ms`,
        );
      driver.stop();
      replica.forwarded.failAll(
        new HomeKvError("E_UNAVAILABLE", "outcome unknown: the member stopped before the write was seen applied"),
      );
      rpc.close();
    },
  };
}

/**
 * A database whose log is a Raft group: writes go through the group (forwarded to the leader from a
 * follower), reads are this member's store, linearizable behind `readBarrier` (a ReadIndex round).
 */
export function replicatedDatabase(options: {
  observed: ObservedStore;
  driver: RaftDriver<ApplyResult | undefined>;
  replica: StoreReplica;
  rpc: PeerRpc;
  nameOf: (id: NodeId) => string | undefined;
  /** Whether this member's connection to a member is up now. */
  reachable: (id: NodeId) => boolean;
  /** How long a linearizable read waits for the leader's confirmation before UNAVAILABLE. */
  readTimeoutMs: number;
  /** How long a forwarded write waits for the leader's answer (and then to be applied). */
  forwardTimeoutMs: number;
  gcSliceKeysMax?: number;
  /** Runs at close, once the driver has stopped (the transport, the Raft log, the directory lock). */
  onClose?: () => Promise<void>;
  /** Lines for the operator (a leader handing over at close). */
  log?: (line: string) => void;
  /** The member's checkpoints (the Checkpoint RPC writes one); without them it is refused. */
  checkpoints?: MemberCheckpoints;
  /** Writes a backup of the member's store (the Backup RPC); without it the call is refused. */
  backup?: (dir: string) => Promise<BackupInfo>;
  /** Default: the real ones (src/timers.ts). */
  timers?: Timers;
}): Database {
  const { checkpoints } = options;
  const { store, expiry, watchHub } = options.observed;
  const readBarrier = async () => {
    await options.driver.readBarrier(options.readTimeoutMs);
  };
  return assembleDatabase({
    store,
    expiry,
    watchHub,
    log: raftCommitLog({
      driver: options.driver,
      replica: options.replica,
      rpc: options.rpc,
      nameOf: options.nameOf,
      reachable: options.reachable,
      forwardTimeoutMs: options.forwardTimeoutMs,
      log: options.log ?? (() => {}),
      timers: options.timers ?? realTimers,
    }),
    requestIds: options.replica.requestIds,
    leads: () => options.driver.leads,
    gcSliceKeysMax: options.gcSliceKeysMax,
    readBarrier,
    replicationStats: () => options.driver.stats(),
    onClose: options.onClose,
    checkpoint: checkpoints
      ? async (request) => {
          await catchUpForCheckpoint(request, readBarrier);
          return checkpoints.checkpoint();
        }
      : () => Promise.reject(new HomeKvError("E_NOT_PERSISTENT", "this replicated store keeps no checkpoints")),
    lastCheckpoint: () => checkpoints?.lastCheckpoint(),
    backup:
      options.backup ??
      (() =>
        Promise.reject(
          new HomeKvError("E_NOT_PERSISTENT", "this replicated store keeps no data directory to back up"),
        )),
  });
}
