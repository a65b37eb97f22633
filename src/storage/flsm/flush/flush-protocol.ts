import type { TableToWrite } from "../disk-engine.ts";
import type { TableMeta } from "../levels/table-meta.ts";
import type { WireError } from "../worker-errors.ts";

/**
 * The messages between the engine and its flush Worker, one table at a time. The memtable's
 * entries cross as chunks: each a data block as the table format encodes it (block-builder.ts:
 * prefix-compressed, its CRC last), its buffer transferred, not copied. Encoding a block is the
 * main thread's only per-entry work; the Worker decodes it, and Bloom filter, blocks, index and
 * the file's writes and sync are its.
 *
 *   main → worker   begin {table}       a new table: its path, directory, number and options
 *   main → worker   chunk {bytes} …     entries in internal-key order (at most CHUNKS_IN_FLIGHT ahead)
 *   worker → main   taken               a chunk was added to the table: room for one more
 *   main → worker   end                 no more entries: finish the table
 *   worker → main   written {table} | failed {error}   the table, synced with its directory entry;
 *                                       or the error, the file removed (chunks after it are dropped)
 */
export type FlushTable = Omit<TableToWrite, "entries">;

export type ToFlushWorker =
  | { readonly type: "begin"; readonly table: FlushTable }
  | { readonly type: "chunk"; readonly bytes: Uint8Array }
  | { readonly type: "end" };

export type FromFlushWorker =
  | { readonly type: "taken" }
  | { readonly type: "written"; readonly table: TableMeta }
  | { readonly type: "failed"; readonly error: WireError };

/** Chunks sent and not yet taken: bounds the memory a flush holds twice (its memtable, and its entries in flight). */
export const CHUNKS_IN_FLIGHT = 4;

/** A chunk ends at the first entry that brings it to this many bytes. */
export const CHUNK_BYTES = 256 * 1024;
