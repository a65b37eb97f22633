/**
 * The flush Worker's entry point (worker-flushes.ts starts it): writes the table of a frozen
 * memtable from the chunks the main thread sends, on the real file system, so that building the
 * table (Bloom filter, blocks, index) and its writes and sync never take an event-loop turn of the
 * server. `bun build --compile` bundles it as an entry point of its own (scripts/build.ts).
 */
import { realFileSystem } from "../../../io/fs/real-fs.ts";
import { Block } from "../table/block.ts";
import { TableWriter } from "../table/writer.ts";
import { tableMeta } from "../table-file-writer.ts";
import { errorToWire } from "../worker-errors.ts";
import type { FlushTable, FromFlushWorker, ToFlushWorker } from "./flush-protocol.ts";

declare const self: Worker;

const post = (message: FromFlushWorker): void => self.postMessage(message);

interface Flush {
  readonly table: FlushTable;
  /** Each message's work, in order: the writer is created, fed and finished in sequence. */
  work: Promise<TableWriter | undefined>;
  failed: boolean;
}

let current: Flush | undefined;

/** Runs `step` after the flush's earlier work, unless it failed; a failure removes the table and is reported once. */
function then(flush: Flush, step: (writer: TableWriter | undefined) => Promise<TableWriter | undefined>): void {
  flush.work = flush.work.then(async (writer) => {
    if (flush.failed) return writer;
    try {
      return await step(writer);
    } catch (error) {
      flush.failed = true;
      await writer?.abort().catch(() => {});
      post({ type: "failed", error: errorToWire(error) });
      return undefined;
    }
  });
}

self.onmessage = (event: MessageEvent<ToFlushWorker>) => {
  const message = event.data;
  if (message.type === "begin") {
    const { table } = message;
    const flush: Flush = { table, work: Promise.resolve(undefined), failed: false };
    current = flush;
    then(flush, () => TableWriter.create(realFileSystem, table.path, table.options));
    return;
  }
  const flush = current;
  if (flush === undefined) return;
  if (message.type === "chunk") {
    const { bytes } = message;
    then(flush, async (writer) => {
      for (const entry of Block.decode(bytes, flush.table.path, 0).entries()) await writer!.add(entry);
      post({ type: "taken" });
      return writer;
    });
    return;
  }
  then(flush, async (writer) => {
    const finished = await writer!.finish();
    await realFileSystem.syncDir(flush.table.dir);
    post({ type: "written", table: tableMeta(flush.table.number, finished) });
    // A job's garbage (every block it read, every entry it decoded) is all dead now, and this
    // Worker's heap would keep it until its own collector saw fit: through a server with small
    // memtables, 60 MiB of the process's RSS. A collection between jobs costs a job little.
    Bun.gc(true);
    return undefined;
  });
};
