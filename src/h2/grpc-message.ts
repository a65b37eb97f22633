/**
 * gRPC's framing of a message inside an HTTP/2 stream's DATA (the gRPC over HTTP/2 protocol,
 * "Length-Prefixed-Message"):
 *
 *   compressed flag (1 byte: 0 = not compressed) · message length (4 bytes, big-endian) · message
 */
export const GRPC_MESSAGE_PREFIX_BYTES = 5;

/** One uncompressed message with its prefix. */
export function grpcMessage(message: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(GRPC_MESSAGE_PREFIX_BYTES + message.byteLength);
  bytes[0] = 0;
  bytes.writeUInt32BE(message.byteLength, 1);
  bytes.set(message, GRPC_MESSAGE_PREFIX_BYTES);
  return bytes;
}
