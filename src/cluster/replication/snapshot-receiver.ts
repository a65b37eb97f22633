import { describeError } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";
import type { AppendFile, FileSystem } from "../../io/fs/file-system.ts";
import { REPLICATED_CHECKPOINT_FILES } from "../../storage/checkpoint/checkpoint-format.ts";
import { CHECKPOINT_SYNC_EVERY_BYTES } from "../../storage/checkpoint/checkpoint-writer.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { decodeMessages } from "../raft/message-codec.ts";
import type { NodeId, SnapshotMessage } from "../raft/types.ts";
import { encodeStreamFrame, type StreamFrame } from "./snapshot-stream-format.ts";

interface Incoming {
  readonly id: number;
  readonly from: NodeId;
  readonly message: SnapshotMessage;
  readonly fileBytes: number;
  readonly crc: number;
  readonly temporary: string;
  /** Bytes received (appended, or queued to be). */
  received: number;
  /** Bytes appended as of the last sync. */
  synced: number;
  runningCrc: number;
  /** The appends, one after another; a failure fails the stream. */
  writes: Promise<AppendFile>;
  /** Cancels the stall timer. */
  cancelStall: () => void;
  ended: boolean;
}

/**
 * The follower's side of the snapshot stream (snapshot-stream-format.ts): assembles the leader's
 * checkpoint in its data directory under a temporary name, acknowledging each chunk once it is
 * written, and when the whole file is there and its checksum holds, syncs it, gives it its final
 * name and only then hands the snapshot message to Raft (which installs it through the driver).
 * A gap, a bad checksum, a write that fails or a stall ends the stream with a failed `done`, and
 * the leader tries again later. One stream per leader at a time: a new one replaces the old.
 */
export class SnapshotReceiver {
  private readonly streams = new Map<NodeId, Incoming>();
  private closed = false;

  constructor(
    private readonly options: {
      group: number;
      fs: FileSystem;
      /** Where checkpoints are kept: the received one is completed there. */
      dir: string;
      send: (to: NodeId, payload: Uint8Array) => void;
      /** Steps the snapshot message into Raft, once its checkpoint is in place. */
      deliver: (message: SnapshotMessage) => void;
      stallTimeoutMs: number;
      log: (line: string) => void;
      /** Default: the real ones. */
      timers?: Timers;
    },
  ) {}

  /** A begin or chunk from member `from`. */
  received(from: NodeId, frame: Extract<StreamFrame, { type: "begin" | "chunk" }>): void {
    if (this.closed) return;
    if (frame.type === "begin") return this.begin(from, frame);
    const stream = this.streams.get(from);
    if (stream?.id !== frame.stream || stream.ended) return;
    if (frame.offset !== stream.received || stream.received + frame.data.byteLength > stream.fileBytes) {
      return this.fail(stream, `a chunk at byte ${frame.offset} where byte ${stream.received} was due (one was lost)`);
    }
    stream.received += frame.data.byteLength;
    stream.runningCrc = Bun.hash.crc32(frame.data, stream.runningCrc);
    // The chunk's bytes are a view of the payload: a copy outlives this call safely.
    const data = frame.data.slice();
    const received = stream.received;
    this.armStall(stream);
    stream.writes = stream.writes.then(async (file) => {
      await file.append(data);
      // Synced as it goes, as a checkpoint written here is: one sync of the whole file at the end
      // would hold every log fsync of this file system behind it (ext4, data=ordered).
      if (received - stream.synced >= CHECKPOINT_SYNC_EVERY_BYTES) {
        await file.sync();
        stream.synced = received;
      }
      if (!stream.ended) this.answer(stream, { type: "ack", received });
      return file;
    });
    if (received === stream.fileBytes) this.complete(stream);
    else stream.writes.catch((error) => this.fail(stream, `writing it failed: ${describeError(error)}`));
  }

  close(): void {
    this.closed = true;
    for (const stream of [...this.streams.values()]) this.discard(stream);
  }

  private begin(from: NodeId, frame: Extract<StreamFrame, { type: "begin" }>): void {
    let message: SnapshotMessage;
    try {
      message = theSnapshotMessage(frame.message, from, this.options.group);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      this.options.send(
        from,
        encodeStreamFrame({
          type: "done",
          group: this.options.group,
          stream: frame.stream,
          ok: false,
          reason: error.message,
        }),
      );
      return;
    }
    const previous = this.streams.get(from);
    if (previous) this.discard(previous);
    const name = REPLICATED_CHECKPOINT_FILES.fileName(message.snapshot.index);
    // Ends in .tmp: a start removes what a crash left of it. The stream's own: two of one index (a
    // leader deposed mid-stream and the next, or a stream and its retry, whose cleanup is still to
    // run) would otherwise write, remove and name one another's file.
    const temporary = `${this.options.dir}/${name}.${from}-${frame.stream}.received.tmp`;
    const { fs } = this.options;
    const stream: Incoming = {
      id: frame.stream,
      from,
      message,
      fileBytes: frame.fileBytes,
      crc: frame.crc,
      temporary,
      received: 0,
      synced: 0,
      runningCrc: 0,
      writes: fs.remove(temporary).then(() => fs.openAppend(temporary)),
      cancelStall: () => {},
      ended: false,
    };
    this.streams.set(from, stream);
    stream.writes.catch((error) => this.fail(stream, `could not create ${temporary}: ${describeError(error)}`));
    this.armStall(stream);
  }

  /** The last chunk is queued: once written, check, sync, name and deliver. */
  private complete(stream: Incoming): void {
    const { fs, dir } = this.options;
    const final = `${dir}/${REPLICATED_CHECKPOINT_FILES.fileName(stream.message.snapshot.index)}`;
    stream.cancelStall();
    stream.writes
      .then(async (file) => {
        if (stream.runningCrc !== stream.crc) throw new Error("the file received fails its checksum");
        await file.sync();
        await file.close();
        if (stream.ended) return;
        await fs.rename(stream.temporary, final);
        await fs.syncDir(dir);
        if (stream.ended) return;
        stream.ended = true;
        this.streams.delete(stream.from);
        this.options.deliver(stream.message);
        this.answer(stream, { type: "done", ok: true, reason: "" });
      })
      .catch((error) => this.fail(stream, describeError(error)));
  }

  private armStall(stream: Incoming): void {
    stream.cancelStall();
    stream.cancelStall = (this.options.timers ?? realTimers).after(this.options.stallTimeoutMs, () =>
      this.fail(stream, `no chunk for ${this.options.stallTimeoutMs} ms`),
    );
  }

  private fail(stream: Incoming, reason: string): void {
    if (stream.ended) return;
    this.options.log(`gave up receiving the snapshot at index ${stream.message.snapshot.index}: ${reason}`);
    this.answer(stream, { type: "done", ok: false, reason });
    this.discard(stream);
  }

  /** Ends the stream without an answer and removes what it wrote. */
  private discard(stream: Incoming): void {
    stream.ended = true;
    stream.cancelStall();
    if (this.streams.get(stream.from) === stream) this.streams.delete(stream.from);
    const { fs } = this.options;
    stream.writes
      .then((file) => file.close())
      .catch(() => {})
      .then(() => fs.remove(stream.temporary))
      .catch((error) => this.options.log(`could not remove ${stream.temporary}: ${describeError(error)}`));
  }

  private answer(
    stream: Incoming,
    frame: { type: "ack"; received: number } | { type: "done"; ok: boolean; reason: string },
  ): void {
    this.options.send(stream.from, encodeStreamFrame({ ...frame, group: this.options.group, stream: stream.id }));
  }
}

/** The one snapshot message of `payload`, from `from` to this group; a FormatError otherwise. */
function theSnapshotMessage(payload: Uint8Array, from: NodeId, group: number): SnapshotMessage {
  const batch = decodeMessages(payload);
  const only = batch[0];
  if (batch.length !== 1 || only === undefined || only.message.type !== "snapshot")
    throw new FormatError("a snapshot stream must begin with one snapshot message");
  if (only.group !== group || only.message.from !== from)
    throw new FormatError(
      `a snapshot of group ${only.group} from member ${only.message.from} on member ${from}'s stream`,
    );
  return only.message;
}
