import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import type { Database, StoreSettings } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import type { FsyncMode } from "../../../src/storage/wal/wal-writer.ts";
import { describeDatabaseConformance } from "./database-suite.ts";

const DIR = "/data/homekv";

/** The durable database on the in-memory file system (the one that injects faults elsewhere). */
function durableDriver(fsync: FsyncMode) {
  const fileSystems = new WeakMap<Database, MemoryFileSystem>();
  const openOn = async (fs: MemoryFileSystem, settings: StoreSettings) => {
    const db = await openDurableDatabase({ ...settings, fs, dir: DIR, fsync, isAlive: () => false });
    fileSystems.set(db, fs);
    return db;
  };
  return {
    open: (settings: StoreSettings) => openOn(new MemoryFileSystem(), settings),
    async reopen(db: Database, settings: StoreSettings) {
      await db.close();
      return openOn(fileSystems.get(db)!, settings);
    },
  };
}

describeDatabaseConformance("durable, fsync always", durableDriver("always"));
describeDatabaseConformance("durable, fsync everysec", durableDriver("everysec"));
