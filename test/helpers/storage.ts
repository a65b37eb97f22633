import { readFrame } from "../../src/io/format/frame.ts";
import type { WriteOp } from "../../src/storage/ops.ts";

/** Shared by the storage tests: ops from text, and a file's frame layout. */
export const bytes = (text: string) => new TextEncoder().encode(text);
export const put = (key: string, value: string): WriteOp => ({ key, value: bytes(value) });
export const del = (key: string): WriteOp => ({ key, value: null });

/** Frame start offsets of a file: [first frame, second, ..., end of the last whole frame]. */
export function frameStarts(file: Uint8Array): number[] {
  const starts = [0];
  for (;;) {
    const read = readFrame(file, starts.at(-1)!);
    if (read.kind !== "frame") return starts;
    starts.push(read.next);
  }
}
