export { backoffDelayMs } from "./backoff.ts";
export { type FaultStats, type FaultyTransport, type PartitionDirection, withFaults } from "./fault-injection.ts";
export { PROTOCOL_VERSION } from "./handshake.ts";
export { type PeerTransportOptions, TRANSPORT_DEFAULTS } from "./options.ts";
export { createPeerTransport } from "./peer-transport.ts";
export type { PeerStats, PeerTransport, TransportStats } from "./types.ts";
