import { createHmac, timingSafeEqual } from "node:crypto";
import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";

/**
 * The handshake that opens every peer connection, one frame per message, before any payload:
 *
 *   dialer                                          acceptor
 *   hello   version, cluster id, from, to, nonceD  →
 *                                                 ←  welcome  version, cluster id, from, nonceA,
 *                                                             proof(acceptor)
 *   proof   proof(dialer)                          →
 *                                                 ←  accept
 *
 * Either side answers a message it will not take with `refuse` (a reason for the other side's log)
 * and closes. The acceptor also refuses, quietly, a connection that would duplicate one the two nodes
 * already have or are making (the transport says which one is kept). A proof is HMAC-SHA256 keyed by the cluster token over the role, the cluster id, both
 * node ids, the version and both nonces. The token never crosses the wire; each side's proof covers
 * the nonce the other side just drew, so a recorded handshake replayed later fails; the role in it
 * keeps an acceptor's proof from being reflected back as a dialer's. Without a token the key is the
 * empty string: the same exchange, which only such nodes pass.
 *
 * This authenticates the peer when the connection opens; it does not protect the bytes after it
 * from someone on the path between the nodes (TLS is for that).
 *
 * Layout of each message (u32 LE, strings as u32 length + UTF-8, nonces and proofs as u32 length +
 * bytes): u8 kind, then the fields in the order above (refuse: u8 duplicate 0/1, then the reason);
 * hello and welcome have the u32 version first, so that a node of another version
 * is told which one it met even when the rest of the layout has changed.
 */
export const PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 32;
/** No handshake message is larger; a larger frame before the handshake is done closes the connection. */
export const HANDSHAKE_FRAME_BYTES_MAX = 1_024;

export type HandshakeMessage =
  | { kind: "hello"; version: number; clusterId: string; from: string; to: string; nonce: Uint8Array }
  | { kind: "welcome"; version: number; clusterId: string; from: string; nonce: Uint8Array; proof: Uint8Array }
  | { kind: "proof"; proof: Uint8Array }
  | { kind: "accept" }
  /** `duplicate`: not an error; the two nodes already have, or are making, another connection. */
  | { kind: "refuse"; reason: string; duplicate: boolean };

/** Wire values, frozen. */
const KIND = { hello: 1, welcome: 2, proof: 3, accept: 4, refuse: 5 } as const;

export function encodeHandshake(message: HandshakeMessage): Uint8Array {
  const writer = new ByteWriter(128).u8(KIND[message.kind]);
  switch (message.kind) {
    case "hello":
      writer.u32(message.version).string(message.clusterId).string(message.from).string(message.to);
      writer.bytes(message.nonce);
      break;
    case "welcome":
      writer.u32(message.version).string(message.clusterId).string(message.from);
      writer.bytes(message.nonce).bytes(message.proof);
      break;
    case "proof":
      writer.bytes(message.proof);
      break;
    case "accept":
      break;
    case "refuse":
      writer.u8(message.duplicate ? 1 : 0).string(message.reason);
      break;
  }
  return writer.written().slice();
}

/**
 * Reads one handshake message. A hello or welcome of another protocol version comes back as
 * `{ kind: "version" }` whatever follows its version. Throws FormatError on anything else malformed.
 */
export function decodeHandshake(bytes: Uint8Array): HandshakeMessage | { kind: "version"; version: number } {
  const reader = new ByteReader(bytes);
  const kind = reader.u8();
  let message: HandshakeMessage;
  if (kind === KIND.hello || kind === KIND.welcome) {
    const version = reader.u32();
    if (version !== PROTOCOL_VERSION) return { kind: "version", version };
    const clusterId = reader.string();
    const from = reader.string();
    if (kind === KIND.hello) message = { kind: "hello", version, clusterId, from, to: reader.string(), nonce: nonce() };
    else message = { kind: "welcome", version, clusterId, from, nonce: nonce(), proof: reader.bytesCopy() };
  } else if (kind === KIND.proof) message = { kind: "proof", proof: reader.bytesCopy() };
  else if (kind === KIND.accept) message = { kind: "accept" };
  else if (kind === KIND.refuse) {
    const duplicate = reader.u8() === 1;
    message = { kind: "refuse", duplicate, reason: reader.string() };
  } else throw new FormatError(`unknown handshake message kind ${kind}`);
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} bytes after a ${message.kind} message`);
  return message;

  function nonce(): Uint8Array {
    const value = reader.bytesCopy();
    if (value.byteLength !== NONCE_BYTES) throw new FormatError(`a nonce of ${value.byteLength} bytes`);
    return value;
  }
}

export interface ProofInput {
  token: string;
  clusterId: string;
  dialerId: string;
  acceptorId: string;
  dialerNonce: Uint8Array;
  acceptorNonce: Uint8Array;
}

export function proveHandshake(role: "dialer" | "acceptor", input: ProofInput): Uint8Array {
  const signed = new ByteWriter(256)
    .string(`homekv peer ${role}`)
    .u32(PROTOCOL_VERSION)
    .string(input.clusterId)
    .string(input.dialerId)
    .string(input.acceptorId)
    .bytes(input.dialerNonce)
    .bytes(input.acceptorNonce)
    .written();
  return createHmac("sha256", input.token).update(signed).digest();
}

/** Whether `proof` is the one `role` must send, compared in constant time. */
export function checkProof(role: "dialer" | "acceptor", input: ProofInput, proof: Uint8Array): boolean {
  const expected = proveHandshake(role, input);
  return proof.byteLength === expected.byteLength && timingSafeEqual(proof, expected);
}
