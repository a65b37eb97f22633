import { describeError } from "../../errors.ts";
import type { ReadFile } from "../../io/fs/file-system.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { encodeMessages } from "../raft/message-codec.ts";
import type { NodeId, SnapshotMessage, SnapshotOutcome } from "../raft/types.ts";
import { encodeStreamFrame, type StreamFrame } from "./snapshot-stream-format.ts";
import type { StreamSlots } from "./stream-slots.ts";

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
  /** Undefined until the file is open and its checksum taken; chunks are read from it as they go. */
  file: ReadFile | undefined;
  sent: number;
  acked: number;
  /** Cancels the stall timer. */
  cancelStall: () => void;
  /** Gives the stream's slot back (StreamSlots); undefined until it has one. */
  release: (() => void) | undefined;
}

/** Bytes read at a time to take a file's checksum before it is announced. */
const CHECKSUM_SLICE_BYTES = 1 << 20;

/**
 * The leader's side of the snapshot stream (snapshot-stream-format.ts): for a snapshot message the
 * core wants sent, opens the checkpoint it stands for, announces it with the message (its size and
 * checksum), then sends it in chunks read as they go, never more than the window ahead of the
 * follower's acks: a stream holds a chunk of the file in memory, not the file (a node joining a
 * cluster of many partitions is sent many at once). The follower's answer (or a
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
      /** Opens the checkpoint the snapshot at `index` stands for (it may be removed meanwhile: the open file stays readable). */
      openCheckpoint: (index: number) => Promise<ReadFile>;
      report: (to: NodeId, outcome: SnapshotOutcome) => void;
      limits: SnapshotStreamLimits;
      /** Where the node's streams to one peer take turns (shared by its groups); default: none. */
      slots?: StreamSlots;
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
    if (stream?.id !== frame.stream || stream.file === undefined) return;
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
    // Claimed before the file is opened, so that a resend meanwhile is recognised as this one.
    const stream: Outgoing = {
      id,
      to: message.to,
      index: message.snapshot.index,
      file: undefined,
      sent: 0,
      acked: 0,
      cancelStall: () => {},
      release: undefined,
    };
    this.streams.set(message.to, stream);
    const release = await this.options.slots?.acquire(message.to);
    if (this.streams.get(message.to) !== stream) {
      release?.(); // replaced or closed while it waited
      return;
    }
    stream.release = release;
    let file: ReadFile;
    try {
      file = await this.options.openCheckpoint(message.snapshot.index);
    } catch (error) {
      if (this.streams.get(message.to) === stream) this.streams.delete(message.to);
      stream.release?.();
      throw error;
    }
    if (this.streams.get(message.to) !== stream) {
      file.close(); // replaced or closed while opening
      return;
    }
    stream.file = file;
    const { group } = this.options;
    this.options.send(
      message.to,
      encodeStreamFrame({
        type: "begin",
        group,
        stream: id,
        fileBytes: file.size,
        crc: checksumOf(file),
        message: encodeMessages([{ group, message }]),
      }),
    );
    this.pump(stream);
  }

  /** Sends chunks while the window has room; (re)arms the stall timer. */
  private pump(stream: Outgoing): void {
    const { chunkBytes, windowChunks, stallTimeoutMs } = this.options.limits;
    const file = stream.file!;
    // Bounded: at most windowChunks chunks per call.
    for (let i = 0; i < windowChunks; i++) {
      if (stream.sent >= file.size || stream.sent - stream.acked >= windowChunks * chunkBytes) break;
      const data = new Uint8Array(Math.min(chunkBytes, file.size - stream.sent));
      if (file.readAt(data, stream.sent) !== data.byteLength) {
        this.options.log(`the checkpoint at index ${stream.index} ended before its ${file.size} bytes`);
        this.end(stream, "failed");
        return;
      }
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
    stream.file?.close();
    stream.file = undefined;
    stream.release?.();
    if (this.streams.get(stream.to)?.id === stream.id) this.streams.delete(stream.to);
    if (outcome !== undefined) this.options.report(stream.to, outcome);
  }
}

/** The CRC-32 of the whole file, read a slice at a time. */
function checksumOf(file: ReadFile): number {
  const slice = new Uint8Array(Math.min(CHECKSUM_SLICE_BYTES, file.size));
  let crc = 0;
  for (let at = 0; at < file.size; ) {
    const read = file.readAt(slice, at);
    if (read === 0) break;
    crc = Bun.hash.crc32(slice.subarray(0, read), crc);
    at += read;
  }
  return crc;
}
