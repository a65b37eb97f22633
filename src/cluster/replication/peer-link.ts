import { FormatError } from "../../io/format/bytes.ts";
import { decodeMessages, encodeMessages } from "../raft/message-codec.ts";
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
}

/**
 * Carries one Raft group's messages over the peer transport: a Ready's messages to each peer go in
 * one payload (message-codec.ts, tagged with the group's id), and payloads received are decoded and
 * stepped into the group. Raft node ids are numbers, transport node ids are names: `names` maps one
 * to the other for every member (a live map: the member directory's).
 *
 * With `snapshots`, a snapshot message does not go as a Raft payload: the sender streams the
 * checkpoint it stands for (snapshot-stream-format.ts) on its own channel, and the receiver steps the
 * message once the file is in place.
 */
export function linkGroup(options: {
  channels: PeerChannels;
  group: number;
  names: ReadonlyMap<NodeId, string>;
  receive: (message: Message) => void;
  snapshots?: { sender: SnapshotSender; receiver: SnapshotReceiver };
  log?: (line: string) => void;
}): { outbox: RaftOutbox; stats: () => PeerLinkStats } {
  const { channels, group, names, snapshots } = options;
  const { transport } = channels;
  // `names` may change while the link runs (members added and removed): looked up at each payload.
  const idOf = (name: string) => {
    for (const [id, known] of names) if (known === name) return id;
    return undefined;
  };
  const stats: PeerLinkStats = { undecodable: 0, misrouted: 0 };
  let warned = false;
  const decoded = <T>(from: string, decode: () => T): T | undefined => {
    try {
      return decode();
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      stats.undecodable++;
      if (!warned) options.log?.(`dropped a Raft payload from ${from} that does not decode: ${error.message}`);
      warned = true;
      return undefined;
    }
  };
  const streamed = (from: string, frame: StreamFrame) => {
    const id = idOf(from);
    if (snapshots === undefined || id === undefined || frame.group !== group) stats.misrouted++;
    else if (frame.type === "begin" || frame.type === "chunk") snapshots.receiver.received(id, frame);
    else snapshots.sender.received(id, frame);
  };
  channels.on(CHANNEL_SNAPSHOT, (from, payload) => {
    const frame = decoded(from, () => decodeStreamFrame(payload));
    if (frame) streamed(from, frame);
  });
  channels.on(CHANNEL_RAFT, (from, payload) => {
    const batch = decoded(from, () => decodeMessages(payload));
    const sender = idOf(from);
    for (const { group: target, message } of batch ?? []) {
      // A message claiming to come from another member than the connection's is not taken.
      if (target !== group || sender !== message.from) stats.misrouted++;
      else options.receive(message);
    }
  });
  return {
    outbox: {
      send(messages) {
        const byPeer = new Map<NodeId, Message[]>();
        for (const message of messages) {
          if (message.type === "snapshot" && snapshots) {
            snapshots.sender.offer(message);
            continue;
          }
          const list = byPeer.get(message.to);
          if (list) list.push(message);
          else byPeer.set(message.to, [message]);
        }
        for (const [to, list] of byPeer) {
          const name = names.get(to);
          if (name === undefined) {
            stats.misrouted += list.length;
            continue;
          }
          transport.send(name, encodeMessages(list.map((message) => ({ group, message }))));
        }
      },
    },
    stats: () => ({ ...stats }),
  };
}
