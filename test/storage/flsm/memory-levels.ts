import type { Memtable } from "../../../src/storage/flsm/memtable.ts";
import type { RunSource } from "../../../src/storage/flsm/runs.ts";

/**
 * The levels as the store's tests stand them in: flushed memtables kept as runs, newest first,
 * each given to every read (no Bloom filter, no guard). Its flush resolves in a later turn, as a
 * table writer's would, and fails while `failing` is set.
 */
export class MemoryLevels implements RunSource {
  readonly runs: Memtable[] = [];
  failing = false;

  readonly flush = async (memtable: Memtable): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.failing) throw new Error("flush refused by the test");
    this.runs.unshift(memtable);
  };

  runsFor(): Iterable<Memtable> {
    return this.runs;
  }

  runsOverlapping(): Iterable<Memtable> {
    return this.runs;
  }

  get entryCount(): number {
    return this.runs.reduce((sum, run) => sum + run.entryCount, 0);
  }
}
