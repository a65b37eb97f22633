import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { createDatabase, type Database, type StoreSettings } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import type { StoreEngine } from "../../../src/storage/engine.ts";
import type { FsyncMode } from "../../../src/storage/wal/wal-writer.ts";
import { startReplicatedLocalGroup } from "../../cluster/replication/local-group.ts";
import type { DatabaseDriver } from "./database-suite.ts";

/** The ways a database is opened, each a driver of the conformance suite (one file runs each). */

export const inMemoryDriver: DatabaseDriver = { open: async (settings) => createDatabase(settings) };

const DIR = "/data/homekv";

/** The durable database on the in-memory file system (the one that injects faults elsewhere). */
export function durableDriver(fsync: FsyncMode): DatabaseDriver {
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

/**
 * The database of the leader of a three-member Raft group in one process: every write goes through
 * the group's log (each member's own store applies it, at the same revision), and the same tests
 * hold as for one node. Reads take the leader's read barrier (a ReadIndex round).
 */
export const replicatedDriver: DatabaseDriver = {
  async open(settings) {
    const { group, databases } = await startReplicatedLocalGroup(settings);
    const leader = databases.get((await group.leader()).id)!;
    // Closing the leader's database closes the group.
    const close = leader.close;
    return Object.assign(Object.create(leader) as Database, {
      close: async () => {
        await close();
        await Promise.all([...databases.values()].filter((db) => db !== leader).map((db) => db.close()));
        group.stop();
      },
    });
  },
};

/** `driver` with every database it opens (or reopens) kept by `engine`. */
export function onEngine(driver: DatabaseDriver, engine: StoreEngine): DatabaseDriver {
  const { reopen } = driver;
  return {
    open: (settings) => driver.open({ ...settings, engine }),
    ...(reopen === undefined ? {} : { reopen: (db, settings) => reopen(db, { ...settings, engine }) }),
  };
}
