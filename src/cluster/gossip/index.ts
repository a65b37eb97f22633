export {
  type DecodeLimits,
  type DecodeRejection,
  type DecodeResult,
  decode,
  encode,
  FORMAT_VERSION,
  UDP_PAYLOAD_BYTES_MAX,
} from "./codec.ts";
export {
  createGossiper,
  type DatagramDrop,
  type GossipCounters,
  Gossiper,
  type Member,
  type MemberStatus,
  type Outgoing,
} from "./gossiper.ts";
export type { Ack, Ack2, Delta, GossipMessage, Syn } from "./messages.ts";
export type { AnnouncedStatus, Digest, Entry } from "./node-state.ts";
export { GOSSIP_DEFAULTS, type GossiperOptions } from "./options.ts";
export type { DeltaRejection } from "./peer-table.ts";
export { PhiDetector, type PhiDetectorOptions, phiOfNormal } from "./phi-detector.ts";
