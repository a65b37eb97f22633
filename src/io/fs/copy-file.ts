import type { FileSystem } from "./file-system.ts";

/** Bytes read and appended at a time. */
const COPY_CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes copied between syncs, as the checkpoint writer does (CHECKPOINT_SYNC_EVERY_BYTES): a copy
 * left to one final sync would make every WAL fsync of the server wait behind it on ext4. Each sync
 * also gives the event loop back (reads and appends of the real file system are synchronous).
 */
const COPY_SYNC_EVERY_BYTES = 4 * 1024 * 1024;

/** Copies the file `from` to a new file `to`, synced; resolves with the bytes copied. */
export async function copyFile(fs: FileSystem, from: string, to: string): Promise<number> {
  const source = await fs.openRead(from);
  try {
    const target = await fs.openAppend(to);
    try {
      const chunk = new Uint8Array(Math.min(COPY_CHUNK_BYTES, Math.max(1, source.size)));
      let syncedAt = 0;
      for (let position = 0; position < source.size; ) {
        const read = source.readAt(chunk, position);
        if (read === 0) break;
        await target.append(chunk.subarray(0, read));
        position += read;
        if (position - syncedAt >= COPY_SYNC_EVERY_BYTES) {
          await target.sync();
          syncedAt = position;
        }
      }
      await target.sync();
      return target.size;
    } finally {
      await target.close();
    }
  } finally {
    source.close();
  }
}
