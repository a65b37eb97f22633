import type { Digest, Entry } from "./node-state.ts";

/**
 * The three messages of one scuttlebutt exchange, as Cassandra names them. A starts, B answers:
 *
 *   A → B  Syn   A's digests (node, generation, max version)
 *   B → A  Ack   the deltas A lacks, and B's digests of what B lacks ("requests")
 *   A → B  Ack2  the deltas B asked for
 *
 * An Ack2 needs no answer, so a node that leaves pushes its last state as an unsolicited Ack2.
 * Every message names its cluster and its sender; codec.ts gives the byte layout.
 */
export type MessageKindName = "syn" | "ack" | "ack2";

/** Wire values of the kinds: frozen, never renumbered. */
export const MESSAGE_KIND_CODES: Readonly<Record<MessageKindName, number>> = { syn: 1, ack: 2, ack2: 3 };

/**
 * Every entry of one node above `fromVersion`, oldest first, or a prefix of them (cut to fit a
 * datagram). `fromVersion` is what the receiver said it had: it applies the delta only if that
 * leaves no gap (see NodeState), which makes deltas safe to lose, repeat and reorder.
 */
export interface Delta {
  nodeId: string;
  generation: number;
  fromVersion: number;
  entries: Entry[];
}

interface Header {
  clusterId: string;
  senderId: string;
}

/**
 * digests[0] is the sender's own. When all of the sender's nodes did not fit, the rest is a run of
 * its known nodes in id order, circular, from a random start: the receiver may then conclude that a
 * node whose id falls inside that run (first to last, wrapping) and is not listed is unknown to the
 * sender. `complete`: every node the sender knows is listed.
 */
export interface Syn extends Header {
  kind: "syn";
  complete: boolean;
  digests: Digest[];
}

export interface Ack extends Header {
  kind: "ack";
  requests: Digest[];
  deltas: Delta[];
}

export interface Ack2 extends Header {
  kind: "ack2";
  deltas: Delta[];
}

export type GossipMessage = Syn | Ack | Ack2;
