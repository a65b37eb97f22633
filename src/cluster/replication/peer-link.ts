import { FormatError } from "../../io/format/bytes.ts";
import { decodeMessages, encodeMessages } from "../raft/message-codec.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { CHANNEL_RAFT, type PeerChannels } from "./peer-channels.ts";
import type { RaftOutbox } from "./raft-driver.ts";

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
 */
export function linkGroup(options: {
  channels: PeerChannels;
  group: number;
  names: ReadonlyMap<NodeId, string>;
  receive: (message: Message) => void;
  log?: (line: string) => void;
}): { outbox: RaftOutbox; stats: () => PeerLinkStats } {
  const { channels, group, names } = options;
  const { transport } = channels;
  const ids = new Map([...names].map(([id, name]) => [name, id]));
  const stats: PeerLinkStats = { undecodable: 0, misrouted: 0 };
  let warned = false;
  channels.on(CHANNEL_RAFT, (from, payload) => {
    let batch: ReturnType<typeof decodeMessages>;
    try {
      batch = decodeMessages(payload);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      stats.undecodable++;
      if (!warned) options.log?.(`dropped a Raft payload from ${from} that does not decode: ${error.message}`);
      warned = true;
      return;
    }
    for (const { group: target, message } of batch) {
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
