import { assert, HomeKvError } from "../../../errors.ts";
import type { FileSystem } from "../../../io/fs/file-system.ts";
import { realFileSystem } from "../../../io/fs/real-fs.ts";
import type { TableToWrite, WriteTableHook } from "../disk-engine.ts";
import type { TableMeta } from "../levels/table-meta.ts";
import { BlockBuilder } from "../table/block-builder.ts";
import { TABLE_DEFAULTS } from "../table/writer.ts";
import { errorFromWire } from "../worker-errors.ts";
import { WorkerThread } from "../worker-thread.ts";
import { CHUNK_BYTES, CHUNKS_IN_FLIGHT, type FromFlushWorker, type ToFlushWorker } from "./flush-protocol.ts";

type Thread = WorkerThread<ToFlushWorker, FromFlushWorker>;

interface RunningFlush {
  readonly thread: Thread;
  readonly path: string;
  /** Chunks sent and not yet taken. */
  inFlight: number;
  /** Wakes the sender waiting for room (a chunk taken, or the flush over). */
  wake: (() => void) | undefined;
  /** Settled (written, failed, or its Worker died): nothing more is sent. */
  over: boolean;
  resolve(table: TableMeta): void;
  reject(error: Error): void;
}

/**
 * Writes frozen memtables' tables in a Bun Worker (flush-worker.ts), one at a time, on the real
 * file system: the engine's `writeTable` hook for a server. This thread only walks the memtable and
 * encodes its entries into chunks (flush-protocol.ts), yielding to the event loop after each; the
 * Worker builds and writes the table. A flush whose Worker dies is rejected with E_UNAVAILABLE
 * once the Worker has exited and the table's file is removed.
 */
export class WorkerFlushes {
  private thread: Thread | undefined;
  private running: RunningFlush | undefined;

  constructor(private readonly fs: FileSystem = realFileSystem) {}

  readonly writeTable: WriteTableHook = async ({ entries, ...table }: TableToWrite): Promise<TableMeta> => {
    assert(this.running === undefined, "a flush started while another runs");
    const thread = this.started();
    const written = new Promise<TableMeta>((resolve, reject) => {
      this.running = { thread, path: table.path, inFlight: 0, wake: undefined, over: false, resolve, reject };
    });
    // It may fail while chunks are still being encoded: the failure is returned below, not lost.
    written.catch(() => {});
    const flush = this.running!;
    thread.busy = true;
    thread.post({ type: "begin", table });
    const block = new BlockBuilder(table.options.restartInterval ?? TABLE_DEFAULTS.restartInterval);
    try {
      for (const entry of entries) {
        block.add(entry);
        if (block.size >= CHUNK_BYTES && !(await this.send(flush, block.finish()))) break;
      }
      if (!flush.over && !block.isEmpty) await this.send(flush, block.finish());
    } catch (error) {
      // The Worker holds a table half fed: it goes, with its file, and the next flush starts a new one.
      await this.stop(thread, "flush: the memtable's entries could not be encoded");
      throw error;
    }
    if (!flush.over) thread.post({ type: "end" });
    return written;
  };

  async close(): Promise<void> {
    if (this.thread !== undefined) await this.stop(this.thread, "the flush Worker was closed during a flush");
  }

  /** Sends a chunk once there is room; false when the flush is over (nothing more to send). */
  private async send(flush: RunningFlush, bytes: Uint8Array): Promise<boolean> {
    while (flush.inFlight >= CHUNKS_IN_FLIGHT && !flush.over)
      await new Promise<void>((resolve) => (flush.wake = resolve));
    if (flush.over) return false;
    flush.inFlight++;
    flush.thread.post({ type: "chunk", bytes }, [bytes.buffer as ArrayBuffer]);
    // Encoding is synchronous: a turn of the event loop between chunks keeps the server's calls moving.
    await new Promise((resolve) => setImmediate(resolve));
    return !flush.over;
  }

  private started(): Thread {
    if (this.thread !== undefined) return this.thread;
    const thread: Thread = new WorkerThread(new URL("./flush-worker.ts", import.meta.url), {
      message: (message) => this.receive(thread, message),
      died: (why) => void this.stop(thread, `flush: ${why}`),
    });
    this.thread = thread;
    return thread;
  }

  private receive(thread: Thread, message: FromFlushWorker): void {
    const flush = this.running;
    if (flush?.thread !== thread) return;
    if (message.type === "taken") {
      flush.inFlight--;
      flush.wake?.();
      return;
    }
    this.finish(flush);
    if (message.type === "written") flush.resolve(message.table);
    else flush.reject(errorFromWire(message.error, "flush"));
  }

  private finish(flush: RunningFlush): void {
    this.running = undefined;
    flush.over = true;
    flush.thread.busy = false;
    flush.wake?.();
  }

  /** Ends `thread`; its flush, if one runs, is rejected once the Worker is gone and the table's file removed. */
  private async stop(thread: Thread, why: string): Promise<void> {
    if (this.thread === thread) this.thread = undefined;
    const flush = this.running?.thread === thread ? this.running : undefined;
    if (flush !== undefined) this.finish(flush);
    await thread.terminate();
    if (flush === undefined) return;
    await this.fs.remove(flush.path).catch(() => {});
    flush.reject(new HomeKvError("E_UNAVAILABLE", why));
  }
}
