import { describeError } from "../../errors.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { encodeMessages } from "../raft/message-codec.ts";
import type { NodeId, SnapshotMessage, SnapshotOutcome } from "../raft/types.ts";
import { encodeStreamFrame, type StreamFrame } from "./snapshot-stream-format.ts";

export interface SnapshotStreamLimits {
  /** Bytes of the file per chunk payload. */
  chunkBytes: number;
  /** Chunks sent and not acknowledged at most: the throttle (the Raft messages share the connection). */
  windowChunks: number;
  /** A stream with no progress this long (no ack; on the follower, no chunk) is given up. */
  stallTimeoutMs: number;
}

/**
 * Defaults, and why: 1 MiB chunks, four in flight, keep the follower's disk busy while at most
 * 4 MiB sit in the peer queue ahead of a heartbeat (a few ms on a LAN); 10 s without progress is
 * a follower gone or stuck, and Raft tries again with a fresh stream.
 */
export const SNAPSHOT_STREAM_DEFAULTS: SnapshotStreamLimits = {
  chunkBytes: 1 << 20,
  windowChunks: 4,
  stallTimeoutMs: 10_000,
};

interface Outgoing {
  readonly id: number;
  readonly to: NodeId;
  readonly index: number;
  /** Empty until the file is read. */
  bytes: Uint8Array;
  sent: number;
  acked: number;
  /** Cancels the stall timer. */
  cancelStall: () => void;
}

/**
 * The leader's side of the snapshot stream (snapshot-stream-format.ts): for a snapshot message the
 * core wants sent, reads the checkpoint it stands for, announces it with the message, then sends it
 * in chunks, never more than the window ahead of the follower's acks. The follower's answer (or a
 * stall) is reported to the core as the snapshot's outcome (etcd's ReportSnapshot). One stream per
 * follower: Raft sends nothing else to a follower while its snapshot is out.
 */
export class SnapshotSender {
  private readonly streams = new Map<NodeId, Outgoing>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly options: {
      group: number;
      /** Queues a payload to a member (the peer transport, by Raft id). */
      send: (to: NodeId, payload: Uint8Array) => void;
      /** The bytes of the checkpoint the snapshot at `index` stands for. */
      readCheckpoint: (index: number) => Promise<Uint8Array>;
      report: (to: NodeId, outcome: SnapshotOutcome) => void;
      limits: SnapshotStreamLimits;
      log: (line: string) => void;
      /** Default: the real ones. */
      timers?: Timers;
    },
  ) {}

  /** The core asked to send `message`. */
  offer(message: SnapshotMessage): void {
    const current = this.streams.get(message.to);
    // The same snapshot is on its way already (a resend of the message): let it go on.
    if (this.closed || current?.index === message.snapshot.index) return;
    if (current) this.end(current, undefined);
    this.start(message).catch((error) => {
      this.options.log(`could not send the snapshot at index ${message.snapshot.index}: ${describeError(error)}`);
      this.options.report(message.to, "failed");
    });
  }

  /** An ack or done from member `from`. */
  received(from: NodeId, frame: Extract<StreamFrame, { type: "ack" | "done" }>): void {
    const stream = this.streams.get(from);
    // An answer to a stream given up since, or to one not begun (its file still being read).
    if (stream?.id !== frame.stream || stream.bytes.byteLength === 0) return;
    if (frame.type === "ack") {
      stream.acked = Math.max(stream.acked, Math.min(frame.received, stream.sent));
      this.pump(stream);
      return;
    }
    if (!frame.ok) this.options.log(`member ${from} refused the snapshot at index ${stream.index}: ${frame.reason}`);
    this.end(stream, frame.ok ? "finished" : "failed");
  }

  close(): void {
    this.closed = true;
    for (const stream of [...this.streams.values()]) this.end(stream, undefined);
  }

  private async start(message: SnapshotMessage): Promise<void> {
    const id = this.nextId++;
    // Claimed before the file is read, so that a resend meanwhile is recognised as this one.
    const stream: Outgoing = {
      id,
      to: message.to,
      index: message.snapshot.index,
      bytes: new Uint8Array(0),
      sent: 0,
      acked: 0,
      cancelStall: () => {},
    };
    this.streams.set(message.to, stream);
    try {
      stream.bytes = await this.options.readCheckpoint(message.snapshot.index);
    } catch (error) {
      if (this.streams.get(message.to) === stream) this.streams.delete(message.to);
      throw error;
    }
    if (this.streams.get(message.to) !== stream) return; // replaced or closed while reading
    const { bytes } = stream;
    const { group } = this.options;
    this.options.send(
      message.to,
      encodeStreamFrame({
        type: "begin",
        group,
        stream: id,
        fileBytes: bytes.byteLength,
        crc: Bun.hash.crc32(bytes),
        message: encodeMessages([{ group, message }]),
      }),
    );
    this.pump(stream);
  }

  /** Sends chunks while the window has room; (re)arms the stall timer. */
  private pump(stream: Outgoing): void {
    const { chunkBytes, windowChunks, stallTimeoutMs } = this.options.limits;
    // Bounded: at most windowChunks chunks per call.
    for (let i = 0; i < windowChunks; i++) {
      if (stream.sent >= stream.bytes.byteLength || stream.sent - stream.acked >= windowChunks * chunkBytes) break;
      const data = stream.bytes.subarray(stream.sent, stream.sent + chunkBytes);
      this.options.send(
        stream.to,
        encodeStreamFrame({ type: "chunk", group: this.options.group, stream: stream.id, offset: stream.sent, data }),
      );
      stream.sent += data.byteLength;
    }
    stream.cancelStall();
    stream.cancelStall = (this.options.timers ?? realTimers).after(stallTimeoutMs, () => {
      this.options.log(
        `member ${stream.to} took no part of the snapshot at index ${stream.index} for ${stallTimeoutMs} ms`,
      );
      this.end(stream, "failed");
    });
  }

  /** Forgets the stream; reports its outcome to the core unless it was only replaced or closed. */
  private end(stream: Outgoing, outcome: SnapshotOutcome | undefined): void {
    stream.cancelStall();
    if (this.streams.get(stream.to)?.id === stream.id) this.streams.delete(stream.to);
    if (outcome !== undefined) this.options.report(stream.to, outcome);
  }
}
