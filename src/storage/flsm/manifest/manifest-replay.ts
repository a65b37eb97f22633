import { HomeKvError } from "../../../errors.ts";
import { corruptionError, decodeAt } from "../../../io/format/corruption.ts";
import { FileFrames } from "../../../io/format/file-frames.ts";
import { FRAME_HEADER_BYTES } from "../../../io/format/frame.ts";
import { type AppendFile, errorCode, type FileSystem, type ReadFile } from "../../../io/fs/file-system.ts";
import {
  CURRENT,
  decodeManifestHeader,
  encodeManifestHeader,
  manifestName,
  parseManifestName,
  readCurrent,
} from "./manifest-files.ts";
import { InvalidEditError, type ManifestState, type ManifestView } from "./manifest-state.ts";
import { decodeEdit, encodeEditFrame } from "./version-edit.ts";

/** The live manifest found at start, replayed into the state, open for appending. */
export interface LiveManifest {
  number: number;
  file: AppendFile;
  /** Bytes cut from its end: an edit a crash interrupted (never acknowledged). */
  tornBytes: number;
}

/** A manifest file holding the whole of `state` as one edit: what a rewrite, a new directory and a backup write. */
export function encodeManifest(number: number, state: ManifestView): Uint8Array {
  const header = encodeManifestHeader(number);
  const edit = encodeEditFrame(state.snapshot());
  const bytes = new Uint8Array(header.byteLength + edit.byteLength);
  bytes.set(header);
  bytes.set(edit, header.byteLength);
  return bytes;
}

/**
 * Reads the manifest CURRENT names into `state`. A torn last edit (a crash during an append) is
 * cut off; anything else that does not read back is an E_CORRUPT error naming the file and offset.
 * The header and the first edit (the state the file was written with) were synced before CURRENT
 * named the file, so they must read back whole.
 */
export async function replayManifest(fs: FileSystem, dir: string, state: ManifestState): Promise<LiveManifest> {
  const number = await readCurrent(fs, dir);
  const path = `${dir}/${manifestName(number)}`;
  let read: ReadFile;
  try {
    read = await fs.openRead(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
    throw corruptionError(
      `${dir}/${CURRENT}`,
      FRAME_HEADER_BYTES,
      `it names ${manifestName(number)}, which is missing`,
    );
  }
  let offset = 0;
  try {
    const frames = new FileFrames(read);
    for (let index = 0; ; index++, offset = frames.offset) {
      const frame = frames.next();
      if (frame.kind === "end" && index >= 2) break;
      if (frame.kind === "torn" && index >= 2) {
        const file = await fs.openAppend(path);
        try {
          await file.truncate(offset);
          await file.sync();
        } catch (error) {
          await file.close().catch(() => {});
          throw error;
        }
        return { number, file, tornBytes: read.size - offset };
      }
      if (frame.kind !== "frame") {
        throw corruptionError(
          path,
          offset,
          frame.kind === "end" ? "the file ends before its first edit" : frame.reason,
        );
      }
      if (index === 0) {
        const header = decodeAt(path, 0, () => decodeManifestHeader(frame.payload));
        if (header !== number) throw corruptionError(path, 0, `its header says manifest ${header}`);
        continue;
      }
      const edit = decodeAt(path, offset, () => decodeEdit(frame.payload));
      try {
        state.apply(edit);
      } catch (error) {
        if (error instanceof InvalidEditError) throw corruptionError(path, offset, error.message);
        throw error;
      }
    }
  } finally {
    read.close();
  }
  return { number, file: await fs.openAppend(path), tornBytes: 0 };
}

/**
 * Checks that a directory without CURRENT is new: nothing but what an interrupted creation leaves
 * (a MANIFEST-1 no longer than `initial`, the bytes a creation writes, and equal to them as far as
 * it goes). Anything else means CURRENT was lost, and starting empty would lose every table.
 */
export async function checkNewDirectory(fs: FileSystem, dir: string, names: string[], initial: Uint8Array) {
  const manifests = names.filter((name) => parseManifestName(name) !== undefined);
  for (const name of manifests) {
    if (name === manifestName(1)) {
      const bytes = await fs.readFile(`${dir}/${name}`);
      if (bytes.byteLength <= initial.byteLength && bytes.every((byte, i) => byte === initial[i])) continue;
    }
    throw new HomeKvError("E_CORRUPT", `${dir}/${CURRENT} is missing, yet ${dir} holds ${manifests.join(", ")}`);
  }
}
