/**
 * The compaction Worker's entry point (worker-runner.ts starts it): runs one job at a time on the
 * real file system, so that merging and encoding tables never take an event-loop turn of the
 * server. `bun build --compile` bundles it as an entry point of its own (scripts/build.ts).
 */
import { realFileSystem } from "../../../io/fs/real-fs.ts";
import { errorToWire } from "../worker-errors.ts";
import { runCompactionJob } from "./run-compaction-job.ts";
import { type FromWorker, fromWire, type ToWorker } from "./worker-protocol.ts";

declare const self: Worker;

const post = (message: FromWorker): void => self.postMessage(message);
/** Number requests waiting for the main thread's answer, oldest first (it answers in order). */
const waiting: ((number: number) => void)[] = [];

function allocateNumber(): Promise<number> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    post({ type: "allocate" });
  });
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "number") {
    waiting.shift()?.(message.number);
    return;
  }
  try {
    const result = await runCompactionJob({ fs: realFileSystem, ...fromWire(message.request), allocateNumber });
    post({ type: "done", result });
    // A job's garbage (every block it read, every entry it decoded) is all dead now, and this
    // Worker's heap would keep it until its own collector saw fit: through a server with small
    // memtables, 60 MiB of the process's RSS. A collection between jobs costs a job little.
    Bun.gc(true);
  } catch (error) {
    post({ type: "failed", error: errorToWire(error) });
  }
};
