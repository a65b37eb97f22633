import type { ReadFile } from "../fs/file-system.ts";
import { type FrameRead, readFrameIn } from "./frame.ts";

/** How much of a file is read at a time. */
export const READ_CHUNK_BYTES = 1 << 20;

/**
 * The frames of a file, read in order a chunk at a time: what `readFrame` answers over the whole
 * file's bytes, without holding them. The buffer holds one chunk, or the largest frame met when a
 * frame is larger; a payload is a view into it, valid until the next call to `next`. `next` in a
 * "frame" answer, and `offset`, are offsets in the file.
 *
 * The one case that reads further than a frame: a damaged header followed by zeros is a torn tail
 * only if zeros run to the end of the file, so the zeros are read (and kept) until something else
 * or the end turns up.
 */
export class FileFrames {
  private buffer: Uint8Array;
  /** File offset of buffer[0]; bytes buffer[0..filled) are the file's from there. */
  private start = 0;
  private filled = 0;
  private at = 0;
  /** The file's size, or less if it turned out shorter (cut while open). */
  private size: number;

  constructor(
    private readonly file: ReadFile,
    private readonly chunkBytes = READ_CHUNK_BYTES,
  ) {
    this.size = file.size;
    this.buffer = new Uint8Array(Math.min(chunkBytes, Math.max(1, file.size)));
  }

  /** Where the next frame starts. */
  get offset(): number {
    return this.at;
  }

  next(): FrameRead {
    // Each round reads at least a byte more, or finds the end of the file: bounded by the file's size.
    for (;;) {
      const endsFile = this.start + this.filled >= this.size;
      const read = readFrameIn(this.buffer.subarray(0, this.filled), this.at - this.start, endsFile);
      if (read.kind === "frame") {
        this.at = this.start + read.next;
        return { ...read, next: this.at };
      }
      if (read.kind !== "more") return read;
      this.fill(read.frameBytes ?? 0);
    }
  }

  /** Keeps the bytes from `at` on, at the front of a buffer with room for `frameBytes` and a chunk more. */
  private fill(frameBytes: number): void {
    const kept = this.start + this.filled - this.at;
    const room = Math.max(frameBytes, kept + this.chunkBytes);
    const from = this.at - this.start;
    if (room > this.buffer.byteLength) {
      const bigger = new Uint8Array(room);
      bigger.set(this.buffer.subarray(from, this.filled));
      this.buffer = bigger;
    } else this.buffer.copyWithin(0, from, this.filled);
    this.start = this.at;
    this.filled = kept;
    const wanted = Math.min(this.buffer.byteLength, this.size - this.start) - kept;
    const read = this.file.readAt(this.buffer.subarray(kept, kept + wanted), this.start + kept);
    this.filled += read;
    if (read < wanted) this.size = this.start + this.filled;
  }
}
