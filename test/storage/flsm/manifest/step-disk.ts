import type { FileSystem } from "../../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { interceptWrites, type WriteCall } from "../../../helpers/storage.ts";

/** What happens at the chosen step: a power cut, or the call failing as a full or broken disk makes it. */
export type StepFault = "power cut" | "ENOSPC" | "EIO";

/**
 * An in-memory disk whose every call that changes it is a numbered step, so that a test can fail
 * the N-th one or cut the power there. After a power cut every later step fails too (the process
 * is gone; what it would still do must not reach the disk), and `memory.crash` then keeps only
 * what was synced. An append the power cut interrupts is made first, unsynced, so that
 * `memory.crash(random)` can keep a torn part of it, as a page cache flushed part way would.
 */
export class StepDisk {
  readonly memory = new MemoryFileSystem();
  readonly fs: FileSystem;
  /** Every step so far, in order. */
  readonly steps: WriteCall[] = [];
  private plan: { at: number; fault: StepFault } | undefined;
  private cut = false;

  constructor() {
    this.fs = interceptWrites(this.memory, async (call, run) => {
      if (this.cut) throw new Error(`${call} after the power cut`);
      const index = this.steps.push(call) - 1;
      const plan = this.plan;
      if (plan?.at !== index) return run();
      if (plan.fault !== "power cut")
        throw Object.assign(new Error(`${plan.fault}: injected at step ${index} (${call})`), { code: plan.fault });
      this.cut = true;
      if (call === "append") await run();
      throw new Error(`power cut at step ${index} (${call})`);
    });
  }

  /** Whether the power was cut (the planned step was reached). */
  get powerCut(): boolean {
    return this.cut;
  }

  /** Makes the step numbered `at` (counting every step since this disk was made) fail with `fault`. */
  failAt(at: number, fault: StepFault): void {
    this.plan = { at, fault };
  }
}
