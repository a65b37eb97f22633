import { describeError } from "../../../errors.ts";
import { corruptionError } from "../../../io/format/corruption.ts";
import { FileKind } from "../../../io/format/file-kind.ts";
import { encodeFrame, FRAME_HEADER_BYTES, readFrame } from "../../../io/format/frame.ts";
import type { AppendFile, FileSystem } from "../../../io/fs/file-system.ts";

/**
 * The manifest's files (frozen format, docs/internals/flsm-manifest-format.md):
 *
 *   CURRENT          one frame whose payload is the live manifest's name, "MANIFEST-<n>"
 *   MANIFEST-<n>     frames: a header (magic "HKVMAN", format version 1, n), then version edits
 *
 * CURRENT is only ever replaced whole: written as CURRENT.tmp, synced, renamed over CURRENT.
 */
export const CURRENT = "CURRENT";
export const CURRENT_TEMPORARY = "CURRENT.tmp";

/** Only the header is shared with the other data files: manifests are named MANIFEST-<n>, not by revision. */
const MANIFEST_HEADER = new FileKind("FLSM manifest", "HKVMAN", 1, ".manifest");
const MANIFEST_NAME = /^MANIFEST-([1-9]\d{0,15})$/;

export function manifestName(number: number): string {
  return `MANIFEST-${number}`;
}

/** The number a manifest's name stands for, or undefined for another file. */
export function parseManifestName(name: string): number | undefined {
  const match = MANIFEST_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function encodeManifestHeader(number: number): Uint8Array {
  return MANIFEST_HEADER.encodeHeader(number);
}

/** The manifest number in a header frame's payload; throws a FormatError when it is not one. */
export function decodeManifestHeader(payload: Uint8Array): number {
  return MANIFEST_HEADER.decodeHeader(payload);
}

/** The number of the manifest CURRENT names; any damage is an error naming CURRENT. */
export async function readCurrent(fs: FileSystem, dir: string): Promise<number> {
  const path = `${dir}/${CURRENT}`;
  const bytes = await fs.readFile(path);
  const read = readFrame(bytes, 0);
  // CURRENT is renamed into place complete: a torn frame is damage too.
  if (read.kind !== "frame") throw corruptionError(path, 0, read.kind === "end" ? "empty file" : read.reason);
  if (read.next !== bytes.byteLength) throw corruptionError(path, read.next, "bytes after the manifest's name");
  const name = new TextDecoder().decode(read.payload);
  const number = parseManifestName(name);
  if (number === undefined)
    throw corruptionError(path, FRAME_HEADER_BYTES, `${JSON.stringify(name)} is not a manifest name`);
  return number;
}

/**
 * Writes a complete manifest file, MANIFEST-<number> holding `bytes` (header and edits), synced,
 * and returns it open for appending. On failure it leaves no such file behind.
 */
export async function writeManifest(
  fs: FileSystem,
  dir: string,
  number: number,
  bytes: Uint8Array,
): Promise<AppendFile> {
  return writeWhole(fs, `${dir}/${manifestName(number)}`, bytes);
}

/**
 * Makes CURRENT name MANIFEST-<number>, atomically: CURRENT.tmp written and synced, renamed over
 * CURRENT, the directory synced. Throws `SwitchUnknownError` when the rename may have happened
 * without being durable (the directory sync failed): CURRENT may then name either manifest.
 */
export async function switchCurrent(fs: FileSystem, dir: string, number: number): Promise<void> {
  const temporary = `${dir}/${CURRENT_TEMPORARY}`;
  const file = await writeWhole(fs, temporary, encodeFrame(new TextEncoder().encode(manifestName(number))));
  await file.close();
  try {
    await fs.rename(temporary, `${dir}/${CURRENT}`);
  } catch (error) {
    // On a real disk a failed rename may still have happened: which CURRENT a restart finds is unknown.
    throw new SwitchUnknownError(error);
  }
  try {
    await fs.syncDir(dir);
  } catch (error) {
    throw new SwitchUnknownError(error);
  }
}

/** CURRENT may name the old or the new manifest after a restart. */
export class SwitchUnknownError extends Error {
  override readonly name = "SwitchUnknownError";
  constructor(cause: unknown) {
    super(`CURRENT may or may not have switched: ${describeError(cause)}`, { cause });
  }
}

/** Creates `path` afresh with `bytes`, synced, open for appending; removes it again on failure. */
async function writeWhole(fs: FileSystem, path: string, bytes: Uint8Array): Promise<AppendFile> {
  // A leftover of an attempt a crash interrupted would be appended to.
  await fs.remove(path);
  const file = await fs.openAppend(path);
  try {
    await file.append(bytes);
    await file.sync();
    return file;
  } catch (error) {
    await file.close().catch(() => {});
    await fs.remove(path).catch(() => {});
    throw error;
  }
}
