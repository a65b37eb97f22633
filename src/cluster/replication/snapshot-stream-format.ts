import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { CHANNEL_SNAPSHOT } from "./peer-channels.ts";

/**
 * The snapshot stream: how a leader sends a follower its replicated checkpoint (the Raft snapshot)
 * over the peer transport, in chunks under a window of unacknowledged bytes, beside the Raft
 * messages on the same connection. Frozen format, version 1; codes are never renumbered. Integers
 * are varints (bytes.ts) unless marked u8 or u32.
 *
 *   payload   u8 tag 4 · u8 type · varint group · varint stream · body
 *             (the tag is the payload's channel on the peer transport: peer-channels.ts)
 *
 *   type            direction            body
 *   1 begin         leader → follower    varint file bytes · u32 CRC-32 of the file · u32 length ·
 *                                        the snapshot message (a message-codec.ts payload of one message)
 *   2 chunk         leader → follower    varint offset · u32 length · bytes
 *   3 ack           follower → leader    varint bytes received so far
 *   4 done          follower → leader    u8 outcome (1 received and handed to Raft, 0 failed) · u32 length · UTF-8 reason
 *
 * `stream` numbers one leader's streams (a new one replaces the one before to the same follower);
 * acks and dones name the stream they answer, so an answer to an abandoned stream is ignored.
 * Chunks come in order on one connection; a gap (the transport dropped one) fails the stream.
 */
export const SNAPSHOT_STREAM_TAG = CHANNEL_SNAPSHOT;

export type StreamFrame =
  | { type: "begin"; group: number; stream: number; fileBytes: number; crc: number; message: Uint8Array }
  | { type: "chunk"; group: number; stream: number; offset: number; data: Uint8Array }
  | { type: "ack"; group: number; stream: number; received: number }
  | { type: "done"; group: number; stream: number; ok: boolean; reason: string };

const TYPE_CODES = { begin: 1, chunk: 2, ack: 3, done: 4 } as const;

export function encodeStreamFrame(frame: StreamFrame): Uint8Array {
  const size = frame.type === "chunk" ? frame.data.byteLength : frame.type === "begin" ? frame.message.byteLength : 0;
  const w = new ByteWriter(64 + size + (frame.type === "done" ? frame.reason.length * 3 : 0));
  w.u8(SNAPSHOT_STREAM_TAG).u8(TYPE_CODES[frame.type]).varint(frame.group).varint(frame.stream);
  switch (frame.type) {
    case "begin":
      w.varint(frame.fileBytes).u32(frame.crc).bytes(frame.message);
      break;
    case "chunk":
      w.varint(frame.offset).bytes(frame.data);
      break;
    case "ack":
      w.varint(frame.received);
      break;
    case "done":
      w.u8(frame.ok ? 1 : 0).string(frame.reason);
      break;
  }
  return w.written();
}

/** The frame in `payload` (whose first byte is SNAPSHOT_STREAM_TAG), or a FormatError; chunk data is a view of it. */
export function decodeStreamFrame(payload: Uint8Array): StreamFrame {
  const r = new ByteReader(payload);
  const tag = r.u8();
  if (tag !== SNAPSHOT_STREAM_TAG) throw new FormatError(`not a snapshot stream payload (first byte ${tag})`);
  const code = r.u8();
  const group = r.varint();
  const stream = r.varint();
  let frame: StreamFrame;
  if (code === TYPE_CODES.begin) {
    frame = { type: "begin", group, stream, fileBytes: r.varint(), crc: r.u32(), message: r.bytesCopy() };
  } else if (code === TYPE_CODES.chunk) {
    frame = { type: "chunk", group, stream, offset: r.varint(), data: r.raw(r.u32()) };
  } else if (code === TYPE_CODES.ack) frame = { type: "ack", group, stream, received: r.varint() };
  else if (code === TYPE_CODES.done) {
    const outcome = r.u8();
    if (outcome > 1) throw new FormatError(`snapshot stream outcome ${outcome}`);
    frame = { type: "done", group, stream, ok: outcome === 1, reason: r.string() };
  } else throw new FormatError(`unknown snapshot stream frame type ${code}`);
  if (r.remaining !== 0) throw new FormatError(`${r.remaining} stray bytes after a snapshot stream ${frame.type}`);
  return frame;
}
