import type { MemoryStorage, RaftStorage } from "./storage.ts";
import type { Entry, HardState, Snapshot } from "./types.ts";

/**
 * What the logs on disk (DurableRaftLog, GroupRaftLog) share: the core reads them from memory,
 * which holds what the disk holds, and their writing calls run one at a time, in call order.
 */
export abstract class SerialLog implements RaftStorage {
  /** The operation running now, or the last one: the next waits for it. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(protected readonly memory: MemoryStorage) {}

  hardState(): HardState {
    return this.memory.hardState();
  }

  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  firstIndex(): number {
    return this.memory.firstIndex();
  }

  lastIndex(): number {
    return this.memory.lastIndex();
  }

  term(index: number): number {
    return this.memory.term(index);
  }

  entries(lo: number, hi: number): Entry[] {
    return this.memory.entries(lo, hi);
  }

  /** Why a call must fail rather than run (the log was closed, or failed), checked as its turn comes. */
  protected abstract refusal(): Error | undefined;

  /** Runs `run` once every call before it has finished. */
  protected exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(() => {
      const refusal = this.refusal();
      if (refusal) throw refusal;
      return run();
    });
    this.queue = result.catch(() => {});
    return result;
  }
}
