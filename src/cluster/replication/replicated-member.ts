import { createObservedStore, type Database, type StoreSettings } from "../../storage/database.ts";
import type { ApplyResult } from "../../storage/ops.ts";
import type { Timers } from "../../timers.ts";
import type { DurableRaftLog } from "../raft/durable-log.ts";
import { Raft } from "../raft/raft.ts";
import type { NodeId } from "../raft/types.ts";
import type { PeerTransport } from "../transport/types.ts";
import { peerChannels } from "./peer-channels.ts";
import { linkGroup } from "./peer-link.ts";
import { createPeerRpc, type PeerRpc } from "./peer-rpc.ts";
import { replicatedDatabase, storeReplica, storeStateMachine } from "./raft-commit-log.ts";
import { RaftDriver } from "./raft-driver.ts";

/** Raft group id of the store (one group for the whole keyspace; partitions will have their own). */
const STORE_GROUP = 1;
/** A write forwarded to the leader is answered within this long, or its outcome is unknown. */
const FORWARD_TIMEOUT_MS = 5_000;

export interface ReplicatedMemberOptions {
  /** This member's Raft id, and every voter's (the group's first members). */
  id: NodeId;
  voters: readonly NodeId[];
  /** Every member's name on the peer transport, by Raft id. */
  names: ReadonlyMap<NodeId, string>;
  raftLog: DurableRaftLog;
  transport: PeerTransport;
  /** The store's history, watch and TTL settings. */
  settings: StoreSettings;
  tickMs: number;
  /** Drives the election timeouts: seeded from the process's randomness in a server. */
  random: () => number;
  /** How long a linearizable read waits for the leader's confirmation before UNAVAILABLE. */
  readTimeoutMs: number;
  log: { info(line: string): void; warn(line: string): void; error(line: string, error: unknown): void };
  /** Runs when the database closes, once the member has stopped (the transport, the log, a lock). */
  onClose?: () => Promise<void>;
  /** Default: the real ones (src/timers.ts). */
  timers?: Timers;
}

/**
 * One member of a replicated store, running: its store with its observers, the Raft core over its
 * log, the group's messages and the members' calls over the peer transport, the driver loop, and the
 * database on top.
 */
export function startReplicatedMember(options: ReplicatedMemberOptions): {
  db: Database;
  raft: Raft;
  driver: RaftDriver<ApplyResult | undefined>;
  rpc: PeerRpc;
} {
  const { log, names } = options;
  const observed = createObservedStore(options.settings, (line) => log.warn(line));
  const raft = new Raft({ id: options.id, voters: options.voters, storage: options.raftLog, random: options.random });
  const channels = peerChannels(options.transport);
  const rpc = createPeerRpc(channels, {
    onBug: (error) => log.error("internal error while answering a member:", error),
    log: (line) => log.warn(line),
    timers: options.timers,
  });
  const replica = storeReplica(options.id, FORWARD_TIMEOUT_MS, options.timers, options.random);
  let driver: RaftDriver<ApplyResult | undefined> | undefined;
  const link = linkGroup({
    channels,
    group: STORE_GROUP,
    names,
    receive: (message) => driver?.receive(message),
    log: (line) => log.warn(line),
  });
  driver = new RaftDriver({
    raft,
    storage: options.raftLog,
    stateMachine: storeStateMachine(observed.store, replica),
    outbox: link.outbox,
    tickMs: options.tickMs,
    timers: options.timers,
    nameOf: (id) => names.get(id) ?? String(id),
    onFatal: (error) => log.error("the Raft log failed; this member stops taking part:", error),
  });
  const db = replicatedDatabase({
    observed,
    driver,
    replica,
    rpc,
    nameOf: (id) => names.get(id),
    reachable: (id) => {
      const name = names.get(id);
      return name !== undefined && options.transport.stats().peers[name]?.connected === true;
    },
    readTimeoutMs: options.readTimeoutMs,
    forwardTimeoutMs: FORWARD_TIMEOUT_MS,
    log: (line) => log.info(line),
    onClose: options.onClose,
    timers: options.timers,
  });
  driver.start();
  return { db, raft, driver, rpc };
}
