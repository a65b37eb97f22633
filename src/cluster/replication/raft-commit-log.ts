import { assert, HomeKvError } from "../../errors.ts";
import { decodeCommand, encodeCommand } from "../../storage/command-format.ts";
import { assembleDatabase, type Database, type ObservedStore } from "../../storage/database.ts";
import type { CommitLog } from "../../storage/log/commit-log.ts";
import type { WriteView } from "../../storage/mvcc/store.ts";
import type { ApplyResult } from "../../storage/ops.ts";
import type { Entry } from "../raft/types.ts";
import type { MemberCheckpoints, StoreCheckpoints } from "./member-checkpoints.ts";
import type { RaftDriver, ReplicatedStateMachine } from "./raft-driver.ts";

/** How long a leader that stops waits for another member to take over before it just goes. */
const HAND_OFF_TIMEOUT_MS = 2_000;

/**
 * The MVCC store as a Raft group's state machine. An entry's data is a command without a revision
 * (src/storage/command-format.ts); the revision is stamped when the entry is applied, one after the
 * store's, so revisions stay dense: the leader's empty entries and membership changes take none.
 *
 * With `checkpoints`, entries the checkpoint the store was loaded from covers are passed over (the
 * log may start before it), and a leader's snapshot is installed from its checkpoint. State that
 * must survive a restart beside the store goes into those checkpoints (member-checkpoints.ts).
 */
export function storeStateMachine(
  store: WriteView,
  checkpoints?: StoreCheckpoints,
): ReplicatedStateMachine<ApplyResult | undefined> {
  return {
    apply(entry: Entry) {
      if (checkpoints?.holds(entry.index)) return undefined;
      const result =
        entry.data === null ? undefined : store.apply({ ...decodeCommand(entry.data), revision: store.revision + 1 });
      checkpoints?.applied(entry);
      return result;
    },
    restore(snapshot) {
      assert(checkpoints !== undefined, "a Raft snapshot reached a store kept without checkpoints");
      return checkpoints.install(snapshot);
    },
  };
}

/**
 * The log layer of a replicated database: `propose` orders the command through the Raft group and
 * resolves with what the store returned once the entry is applied on this member (the leader).
 */
function raftCommitLog(
  driver: RaftDriver<ApplyResult | undefined>,
  log: (line: string) => void,
): CommitLog<ApplyResult> {
  return {
    async propose(command) {
      const result = await driver.propose(encodeCommand(command));
      assert(result !== undefined, "a command's entry applied as an empty one");
      return result;
    },
    async close() {
      // A leader hands over first, so that the others need not wait out an election timeout.
      const wasLeader = driver.leads;
      const handedOver = await driver.handOff(HAND_OFF_TIMEOUT_MS);
      if (wasLeader)
        log(
          handedOver
            ? "handed leadership over before stopping"
            : `stopping as the leader: no member took over within ${HAND_OFF_TIMEOUT_MS} ms`,
        );
      driver.stop();
    },
  };
}

/**
 * A database whose log is a Raft group: writes go through the group (the leader takes them), reads
 * are this member's store, linearizable behind `readBarrier` (a ReadIndex round).
 */
export function replicatedDatabase(options: {
  observed: ObservedStore;
  driver: RaftDriver<ApplyResult | undefined>;
  /** How long a linearizable read waits for the leader's confirmation before UNAVAILABLE. */
  readTimeoutMs: number;
  gcSliceKeysMax?: number;
  /** Runs at close, once the driver has stopped (the transport, the Raft log, the directory lock). */
  onClose?: () => Promise<void>;
  /** Lines for the operator (a leader handing over at close). */
  log?: (line: string) => void;
  /** The member's checkpoints (the Checkpoint RPC writes one); without them it is refused. */
  checkpoints?: MemberCheckpoints;
}): Database {
  const { checkpoints } = options;
  const { store, expiry, watchHub } = options.observed;
  return assembleDatabase({
    store,
    expiry,
    watchHub,
    log: raftCommitLog(options.driver, options.log ?? (() => {})),
    gcSliceKeysMax: options.gcSliceKeysMax,
    readBarrier: async () => {
      await options.driver.readBarrier(options.readTimeoutMs);
    },
    replicationStats: () => options.driver.stats(),
    onClose: options.onClose,
    checkpoint: checkpoints
      ? () => checkpoints.checkpoint()
      : () => Promise.reject(new HomeKvError("E_NOT_PERSISTENT", "this replicated store keeps no checkpoints")),
    lastCheckpoint: () => checkpoints?.lastCheckpoint(),
  });
}
