import type { StoreEngine } from "../../../src/storage/engine.ts";
import { describeDatabaseConformance } from "./database-suite.ts";
import { durableDriver, inMemoryDriver, onEngine, replicatedDriver } from "./drivers.ts";

/**
 * The FLSM engine under every way a database is opened, with a memtable of 256 bytes: it freezes
 * every command or two, so reads cross many runs. A durable database keeps them in tables on disk
 * (64-byte blocks: a read crosses blocks too); an in-memory one keeps its frozen memtables.
 */
const FLSM: StoreEngine = {
  kind: "flsm",
  memtableBytes: 256,
  tuning: { table: { blockBytes: 64, restartInterval: 2 } },
};

describeDatabaseConformance("flsm engine, in memory", onEngine(inMemoryDriver, FLSM));
describeDatabaseConformance("flsm engine, durable, fsync always", onEngine(durableDriver("always"), FLSM));
describeDatabaseConformance("flsm engine, replicated leader of three", onEngine(replicatedDriver, FLSM));
