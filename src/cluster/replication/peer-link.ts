import { assert } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { decodeMessages, encodeMessages, type GroupMessage, messageBytesHint } from "../raft/message-codec.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { CHANNEL_RAFT, CHANNEL_SNAPSHOT, type PeerChannels } from "./peer-channels.ts";
import type { RaftOutbox } from "./raft-driver.ts";
import type { SnapshotReceiver } from "./snapshot-receiver.ts";
import type { SnapshotSender } from "./snapshot-sender.ts";
import { decodeStreamFrame, type StreamFrame } from "./snapshot-stream-format.ts";

/** What a link counts (for metrics and tests). */
export interface PeerLinkStats {
  /** Payloads that did not decode (a peer of another version, or a bug): dropped whole. */
  undecodable: number;
  /** Messages for a group this member does not run, or from a node it does not know. */
  misrouted: number;
  /** Raft payloads sent, and the messages in them (many groups' messages to a peer share one). */
  payloadsSent: number;
  messagesSent: number;
}

/** One group as the link sees it: where its messages go, and its snapshot streams. */
export interface LinkedGroup {
  receive(message: Message): void;
  snapshots?: { sender: SnapshotSender; receiver: SnapshotReceiver };
  /**
   * The group's own ids → node names, when its members are numbered per group (a partition's
   * replicas; a live map); default: the link's `names`.
   */
  names?: ReadonlyMap<NodeId, string>;
  /**
   * This node's id in the group: a message addressed to another id is dropped. A replica removed
   * from a node and added back later gets a new id, so what was sent to the old one, still queued
   * somewhere, never reaches the new one (nor could the new one answer as the old).
   */
  self?: NodeId;
}

export interface PeerLinkOptions {
  channels: PeerChannels;
  /** Raft node id → transport node name, for every node (a live map: it may change while the link runs). */
  names: ReadonlyMap<NodeId, string>;
  /**
   * A message for a group of the link's `names` from node `id`, which they do not name yet, came
   * over the connection of node `name`: whether to take it (the caller names the node then, when
   * it can tell the id is that node's). Default: not taken.
   */
  learnName?: (id: NodeId, name: string) => boolean;
  log?: (line: string) => void;
  /** When buffered messages leave (timers.soon); default: the real ones. */
  timers?: Timers;
  /**
   * A payload is closed before its messages pass this many bytes (a message larger alone goes
   * alone); default PAYLOAD_BYTES_MAX. Well under the transport's bound (16 MiB), which drops a
   * larger payload whole.
   */
  payloadBytesMax?: number;
}

/**
 * Why 1 MiB: a turn's messages to a peer are every group's (a catch-up of a few groups, each with a
 * 16 MiB flow window, passes the transport's 16 MiB at once), and one payload too large would drop
 * them all, the idle groups' heartbeats with them. The transport writes a turn's payloads to a peer
 * in one socket write anyway, so more of them cost a frame header each; a heartbeat-only turn of
 * hundreds of groups still fits in one.
 */
const PAYLOAD_BYTES_MAX = 1 << 20;

/**
 * Carries the Raft messages of the groups a process runs over the peer transport. The messages any
 * group sends to a peer in one event-loop turn leave together, as one payload (message-codec.ts,
 * each tagged with its group's id; several, in order, past `payloadBytesMax`), once the turn's
 * work is done: the heartbeats a host's tick
 * makes every group send travel to each peer as one payload, not one per group (CockroachDB
 * coalesces heartbeats for the same reason). Payloads received are decoded and each message is
 * stepped into its group. Raft node ids are numbers, transport node ids are names: `names` maps one
 * to the other.
 *
 * A group with `snapshots` does not send its snapshot messages as Raft payloads: its sender streams
 * the checkpoint each stands for (snapshot-stream-format.ts) on its own channel, and its receiver
 * steps the message once the file is in place.
 */
export class PeerLink {
  private readonly groups = new Map<number, LinkedGroup>();
  /** A turn's messages by the node (transport name) they go to. */
  private readonly pending = new Map<string, GroupMessage[]>();
  private flushing = false;
  private readonly counts: PeerLinkStats = { undecodable: 0, misrouted: 0, payloadsSent: 0, messagesSent: 0 };
  private warned = false;
  private readonly timers: Timers;

  constructor(private readonly options: PeerLinkOptions) {
    this.timers = options.timers ?? realTimers;
    options.channels.on(CHANNEL_SNAPSHOT, (from, payload) => {
      const frame = this.decoded(from, () => decodeStreamFrame(payload));
      if (frame) this.streamed(from, frame);
    });
    options.channels.on(CHANNEL_RAFT, (from, payload) => {
      const batch = this.decoded(from, () => decodeMessages(payload));
      for (const { group, message } of batch ?? []) {
        const target = this.groups.get(group);
        // A message claiming to come from another node than the connection's is not taken, nor
        // one for an id of this node that is not its id in the group now.
        if (
          target === undefined ||
          this.senderOf(target, message.from, from) !== from ||
          (target.self !== undefined && message.to !== target.self)
        )
          this.counts.misrouted++;
        else target.receive(message);
      }
    });
  }

  /** Carries `group`'s messages from now on; what it sends goes through the outbox returned. */
  join(group: number, linked: LinkedGroup): RaftOutbox {
    assert(Number.isSafeInteger(group) && group > 0, () => `group ${group}: the message codec carries positive ids`);
    this.groups.set(group, linked);
    return { send: (messages) => this.send(group, linked, messages) };
  }

  /** Stops carrying `group`'s messages: those that arrive for it are counted as misrouted. */
  leave(group: number): void {
    this.groups.delete(group);
  }

  stats(): PeerLinkStats {
    return { ...this.counts };
  }

  private send(group: number, linked: LinkedGroup, messages: readonly Message[]): void {
    const names = linked.names ?? this.options.names;
    for (const message of messages) {
      if (message.type === "snapshot" && linked.snapshots) {
        linked.snapshots.sender.offer(message);
        continue;
      }
      const to = names.get(message.to);
      if (to === undefined) {
        this.counts.misrouted++;
        continue;
      }
      const list = this.pending.get(to);
      if (list) list.push({ group, message });
      else this.pending.set(to, [{ group, message }]);
    }
    if (this.pending.size === 0 || this.flushing) return;
    this.flushing = true;
    this.timers.soon(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    const { channels } = this.options;
    // Taken before encoding: a message that breaks the codec's asserts is lost with its turn's
    // messages, not kept to break every flush after it.
    const pending = [...this.pending];
    this.pending.clear();
    for (const [name, batch] of pending) {
      for (const payload of payloads(batch, this.options.payloadBytesMax ?? PAYLOAD_BYTES_MAX)) {
        channels.transport.send(name, encodeMessages(payload));
        this.counts.payloadsSent++;
      }
      this.counts.messagesSent += batch.length;
    }
  }

  /** The name of node `id` in `group`, or `from` when the link's names do not know it and `learnName` takes it. */
  private senderOf(group: LinkedGroup, id: NodeId, from: string): string | undefined {
    if (group.names) return group.names.get(id);
    const known = this.options.names.get(id);
    if (known !== undefined) return known;
    return this.options.learnName?.(id, from) ? from : undefined;
  }

  private decoded<T>(from: string, decode: () => T): T | undefined {
    try {
      return decode();
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      this.counts.undecodable++;
      if (!this.warned)
        this.options.log?.(`dropped a Raft payload from ${from} that does not decode: ${error.message}`);
      this.warned = true;
      return undefined;
    }
  }

  private streamed(from: string, frame: StreamFrame): void {
    const target = this.groups.get(frame.group);
    const snapshots = target?.snapshots;
    const id = target && idOf(target.names ?? this.options.names, from);
    if (snapshots === undefined || id === undefined) this.counts.misrouted++;
    else if (frame.type === "begin" || frame.type === "chunk") snapshots.receiver.received(id, frame);
    else snapshots.sender.received(id, frame);
  }
}

/** The id `names` gives node `name` (a scan: snapshot streams are rare). */
function idOf(names: ReadonlyMap<NodeId, string>, name: string): NodeId | undefined {
  for (const [id, known] of names) if (known === name) return id;
  return undefined;
}

/** `batch` cut, in order, into runs of at most `bytesMax` bytes each (or of one message larger). */
function* payloads(batch: readonly GroupMessage[], bytesMax: number): Generator<GroupMessage[]> {
  let run: GroupMessage[] = [];
  let bytes = 0;
  for (const item of batch) {
    const size = messageBytesHint(item.message);
    if (run.length > 0 && bytes + size > bytesMax) {
      yield run;
      run = [];
      bytes = 0;
    }
    run.push(item);
    bytes += size;
  }
  if (run.length > 0) yield run;
}
