import type { PeerTransport } from "../transport/types.ts";

/**
 * What a payload on the peer transport carries, told by its first byte (frozen: codes are never
 * renumbered). Code 1 is also the version byte of the Raft message codec (message-codec.ts), so a
 * Raft batch is its own payload, unchanged.
 *
 *   1 Raft messages (message-codec.ts)    2 peer RPC request    3 peer RPC response (peer-rpc.ts)
 *   4 the snapshot stream (snapshot-stream-format.ts)
 */
export const CHANNEL_RAFT = 1;
export const CHANNEL_RPC_REQUEST = 2;
export const CHANNEL_RPC_RESPONSE = 3;
export const CHANNEL_SNAPSHOT = 4;

type Receiver = (from: string, payload: Uint8Array) => void;

/** The transport's one receiver, shared: each payload goes to the receiver of its channel. */
export interface PeerChannels {
  readonly transport: PeerTransport;
  /** Sets the receiver of a channel's payloads (the whole payload, the channel byte included). */
  on(channel: number, receiver: Receiver): void;
  /** Payloads of a channel nobody receives (a peer of a newer version): dropped, counted. */
  unrouted(): number;
}

export function peerChannels(transport: PeerTransport): PeerChannels {
  const receivers = new Map<number, Receiver>();
  let unrouted = 0;
  transport.onMessage((from, payload) => {
    const receiver = payload.byteLength > 0 ? receivers.get(payload[0]!) : undefined;
    if (receiver) receiver(from, payload);
    else unrouted++;
  });
  return {
    transport,
    on(channel, receiver) {
      receivers.set(channel, receiver);
    },
    unrouted: () => unrouted,
  };
}
