import { FormatError } from "../../io/format/bytes.ts";
import { decodeMessages, encodeMessages } from "../raft/message-codec.ts";
import type { Message, NodeId } from "../raft/types.ts";
import type { PeerTransport } from "../transport/types.ts";
import type { RaftOutbox } from "./raft-driver.ts";
import type { SnapshotReceiver } from "./snapshot-receiver.ts";
import type { SnapshotSender } from "./snapshot-sender.ts";
import { decodeStreamFrame, SNAPSHOT_STREAM_TAG, type StreamFrame } from "./snapshot-stream-format.ts";

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
 * to the other for every member.
 *
 * With `snapshots`, a snapshot message does not go as a Raft payload: the sender streams the
 * checkpoint it stands for (snapshot-stream-format.ts), and the receiver steps the message once the
 * file is in place. The first byte of a payload tells a stream's from a batch of messages.
 */
export function linkGroup(options: {
  transport: PeerTransport;
  group: number;
  names: ReadonlyMap<NodeId, string>;
  receive: (message: Message) => void;
  snapshots?: { sender: SnapshotSender; receiver: SnapshotReceiver };
  log?: (line: string) => void;
}): { outbox: RaftOutbox; stats: () => PeerLinkStats } {
  const { transport, group, names, snapshots } = options;
  const ids = new Map([...names].map(([id, name]) => [name, id]));
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
    const id = ids.get(from);
    if (snapshots === undefined || id === undefined || frame.group !== group) stats.misrouted++;
    else if (frame.type === "begin" || frame.type === "chunk") snapshots.receiver.received(id, frame);
    else snapshots.sender.received(id, frame);
  };
  transport.onMessage((from, payload) => {
    if (payload[0] === SNAPSHOT_STREAM_TAG) {
      const frame = decoded(from, () => decodeStreamFrame(payload));
      if (frame) streamed(from, frame);
      return;
    }
    const batch = decoded(from, () => decodeMessages(payload));
    for (const { group: target, message } of batch ?? []) {
      // A message claiming to come from another member than the connection's is not taken.
      if (target !== group || ids.get(from) !== message.from) stats.misrouted++;
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
