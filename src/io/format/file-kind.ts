import { ByteReader, ByteWriter, FormatError } from "./bytes.ts";
import { corruptionError, decodeAt } from "./corruption.ts";
import { encodeFrame, readFrame } from "./frame.ts";

/**
 * What every HomeKV data file shares: a name made of a revision (20 digits, so that names sort
 * like numbers) and a suffix, and a first frame holding a 6-byte magic, a format version and
 * that revision. WAL segments and checkpoints are the two kinds.
 */
export class FileKind {
  private readonly magic: Uint8Array;
  private readonly namePattern: RegExp;

  constructor(
    readonly description: string,
    magic: string,
    readonly formatVersion: number,
    readonly suffix: string,
  ) {
    this.magic = new TextEncoder().encode(magic);
    this.namePattern = new RegExp(`^(\\d{20})${suffix.replace(".", "\\.")}$`);
  }

  fileName(revision: number): string {
    return `${String(revision).padStart(20, "0")}${this.suffix}`;
  }

  /** The revision a file name stands for, or undefined for a file of another kind. */
  parseFileName(name: string): number | undefined {
    const match = this.namePattern.exec(name);
    return match ? Number(match[1]) : undefined;
  }

  encodeHeader(revision: number): Uint8Array {
    return encodeFrame(new ByteWriter(32).raw(this.magic).u8(this.formatVersion).u64(revision).written());
  }

  /** A file written whole at once (a snapshot): the header, then one frame holding `payload`. */
  encodeSingleFrameFile(revision: number, payload: Uint8Array): Uint8Array {
    const header = this.encodeHeader(revision);
    const body = encodeFrame(payload);
    const file = new Uint8Array(header.byteLength + body.byteLength);
    file.set(header);
    file.set(body, header.byteLength);
    return file;
  }

  /**
   * The payload of a file `encodeSingleFrameFile` wrote, and the offset of its frame (for errors).
   * Such a file is written atomically, so any damage at all is corruption.
   */
  readSingleFrameFile(bytes: Uint8Array, path: string): { payload: Uint8Array; offset: number } {
    const header = readFrame(bytes, 0);
    if (header.kind !== "frame") throw corruptionError(path, 0, header.kind === "end" ? "empty file" : header.reason);
    decodeAt(path, 0, () => this.decodeHeader(header.payload));
    const body = readFrame(bytes, header.next);
    if (body.kind !== "frame")
      throw corruptionError(path, header.next, body.kind === "end" ? "nothing after the header" : body.reason);
    return { payload: body.payload, offset: header.next };
  }

  /** The revision in a header frame's payload. */
  decodeHeader(payload: Uint8Array): number {
    const reader = new ByteReader(payload);
    const magic = reader.raw(this.magic.byteLength);
    if (!magic.every((byte, i) => byte === this.magic[i]))
      throw new FormatError(`not a HomeKV ${this.description} (bad magic)`);
    const version = reader.u8();
    if (version !== this.formatVersion)
      throw new FormatError(`${this.description} format version ${version} is not supported`);
    return reader.u64();
  }
}
