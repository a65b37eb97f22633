import { BLOCK_CACHE_BYTES_DEFAULT, type FlsmEngineOptions } from "./flsm/disk-engine.ts";
import { createFlsmStore, MEMTABLE_BYTES_DEFAULT } from "./flsm/flsm-store.ts";
import { BLOCK_COMPRESSIONS, type BlockCompression } from "./flsm/table/block-compression.ts";
import { TABLE_DEFAULTS } from "./flsm/table/writer.ts";
import { createMvccStore, type MvccStore, type StoreOptions } from "./mvcc/store.ts";

/** The engines a database can keep its versions in (`homekv serve --engine`). */
export const STORE_ENGINES = ["memory", "flsm"] as const;
export type StoreEngineName = (typeof STORE_ENGINES)[number];

/**
 * For the settings: the bytes of the FLSM engine's table blocks kept in memory unless
 * `--block-cache-bytes` says otherwise, and how its tables may store their data blocks
 * (`--table-compression`).
 */
export { BLOCK_CACHE_BYTES_DEFAULT, BLOCK_COMPRESSIONS, type BlockCompression };
/** How new tables store their blocks unless `--table-compression` says otherwise. */
export const TABLE_COMPRESSION_DEFAULT: BlockCompression = TABLE_DEFAULTS.compression;

/**
 * Which engine keeps a database's versions: all in memory (the default), or the fragmented LSM
 * (recent versions in a memtable, the rest in runs below it; docs/internals/flsm.md). A durable
 * database keeps the FLSM's runs in tables on disk (flsm/disk-engine.ts); an in-memory one keeps its
 * frozen memtables in memory.
 */
export type StoreEngine = { readonly kind: "memory" } | FlsmEngineSettings;

export interface FlsmEngineSettings extends Pick<FlsmEngineOptions, "blockCacheBytes" | "compact" | "tuning"> {
  readonly kind: "flsm";
  readonly memtableBytes?: number;
  /**
   * How the tables written from now on store their data blocks (`--table-compression`; zstd by
   * default, TABLE_DEFAULTS). Tables already written keep theirs: a table says it block by block.
   */
  readonly compression?: BlockCompression;
}

/** What a server on the FLSM engine may hold resident beside its memtable and block cache (issue's bound). */
export const FLSM_MEMORY_SLACK_BYTES = 256 * 1024 * 1024;

/**
 * The resident memory a server on the FLSM engine keeps within, however much data it stores: its
 * memtable and block cache, and FLSM_MEMORY_SLACK_BYTES for the runtime, the memtables waiting for
 * their flush, the tables' indexes and filters, and the garbage between collections.
 */
export function flsmMemoryBound(settings: FlsmEngineSettings): number {
  return (
    (settings.memtableBytes ?? MEMTABLE_BYTES_DEFAULT) +
    (settings.blockCacheBytes ?? BLOCK_CACHE_BYTES_DEFAULT) +
    FLSM_MEMORY_SLACK_BYTES
  );
}

/** A new, empty store of the engine chosen. */
export function createStore(engine: StoreEngine = { kind: "memory" }, options: StoreOptions): MvccStore {
  return engine.kind === "flsm"
    ? createFlsmStore({ ...options, memtableBytes: engine.memtableBytes })
    : createMvccStore(options);
}
