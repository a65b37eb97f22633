import { createDatabase, type Database } from "../../../src/storage/database.ts";
import type { StoreEngine } from "../../../src/storage/engine.ts";
import type { ScanPage } from "../../../src/storage/mvcc/store.ts";
import type { ApplyResult, KeyRecord } from "../../../src/storage/ops.ts";
import type { WatchBatch, Watcher, WatchSink } from "../../../src/storage/watch/watch-hub.ts";
import type { DatabaseDriver } from "./database-suite.ts";

/**
 * The conformance suite over a store fed revisions with gaps, as a partition's timestamps will
 * be, without a copy of the suite: the suite speaks of commands 1, 2, 3 ... (its revisions are
 * dense), and this driver's database stamps them at revisions spaced by GAPS, translating every
 * revision on the way in and out. Each way in lands where a gap shows a mistake:
 *
 *   commands (suite)      1       2       3      4      5 ...
 *   stamped (store)       7    1007    1009   1010   1323 ...
 *   read at 2 → 1008     the last revision of the gap after command 2 (it must see 2, not 3)
 *   compact(2) → 1008    a compaction to a revision in a gap
 *   watch from 1 → 1     the first revision of the gap before command 1 (it must start with 1)
 *
 * A read or compaction at the current revision goes to the current command's revision (a gap
 * after it would be the future). Retention (`historyRevisions`) is given as it is: a window of
 * the store's revision numbers. Stats and checkpoints pass through untranslated: the suite reads
 * neither.
 */

/** Gaps between consecutive commands, in turn: adjacent revisions among wide and narrow gaps. */
const GAPS = [7, 1000, 2, 1, 313, 64, 1, 999, 3];

/** Command n (1, 2, ...) of the suite at its spaced revision, and back. */
class Spacing {
  private readonly stamps = [0];

  /** The store's revision of command `n` (0 for none). */
  of(n: number): number {
    while (this.stamps.length <= n)
      this.stamps.push(this.stamps.at(-1)! + GAPS[(this.stamps.length - 1) % GAPS.length]!);
    return this.stamps[n]!;
  }

  /** The commands at or below the store's revision `revision`: the suite's revision for it. */
  count(revision: number): number {
    let high = 1;
    while (this.of(high) <= revision) high *= 2;
    let low = 0; // of(low) <= revision < of(high)
    while (high - low > 1) {
      const middle = (low + high) >>> 1;
      if (this.of(middle) <= revision) low = middle;
      else high = middle;
    }
    return low;
  }
}

export function gappedDriver(engine?: StoreEngine): DatabaseDriver {
  return {
    open: async (settings) => {
      const spacing = new Spacing();
      const db = createDatabase(engine === undefined ? settings : { ...settings, engine }, (last) =>
        spacing.of(spacing.count(last) + 1),
      );
      return spaced(db, spacing);
    },
  };
}

function spaced(db: Database, spacing: Spacing): Database {
  const out = (revision: number) => spacing.count(revision);
  /** Where a read or compaction at the suite's `revision` goes (see the top). */
  const at = (revision: number) => {
    const current = out(db.revision);
    return revision < current ? spacing.of(revision + 1) - 1 : spacing.of(revision);
  };
  const atOrCurrent = (revision: number | undefined) => (revision === undefined ? undefined : at(revision));
  const record = (r: KeyRecord): KeyRecord => ({
    ...r,
    modRevision: out(r.modRevision),
    createRevision: out(r.createRevision),
  });
  const page = (p: ScanPage): ScanPage => ({ ...p, records: p.records.map(record) });
  const result = (r: ApplyResult): ApplyResult => ({
    ...r,
    revision: out(r.revision),
    ...(r.reads === undefined ? {} : { reads: r.reads.map(record) }),
  });
  /** The first revision a watcher has not taken, in the suite's numbers. */
  const resume = (revision: number) => out(revision - 1) + 1;
  const batch = (b: WatchBatch | undefined): WatchBatch | undefined =>
    b && {
      revision: out(b.revision),
      events: b.events.map((e) => ({ ...e, revision: out(e.revision), createRevision: out(e.createRevision) })),
    };
  /** A watch from the suite's `start` begins in the gap before that command, or above a compaction inside it. */
  const watchStart = (start: number) => {
    if (start === 0) return 0;
    return Math.max(spacing.of(start - 1) + 1, Math.min(spacing.of(start), db.compactedRevision + 1));
  };
  const overrides = {
    get revision() {
      return out(db.revision);
    },
    get compactedRevision() {
      return out(db.compactedRevision);
    },
    read: (keys: readonly string[], revision?: number) => {
      const read = db.read(keys, atOrCurrent(revision));
      return { revision: out(read.revision), records: read.records.map(record) };
    },
    readBytes: (keys: readonly string[], revision?: number) => db.readBytes(keys, atOrCurrent(revision)),
    scan: (options) => page(db.scan({ ...options, revision: at(options.revision) })),
    propose: async (command) => result(await db.propose(command)),
    write: async (ops, requestId) => result(await db.write(ops, requestId)),
    txn: async (txn, options) => {
      const done = await db.txn(txn, options);
      return { ...done, revision: out(done.revision), reads: done.reads.map(record) };
    },
    compact: async (revision: number) => {
      // At or below the compaction: refused as the store refuses its own compacted revision.
      const target = revision <= out(db.compactedRevision) ? db.compactedRevision : at(revision);
      const done = await db.compact(target);
      return { revision: out(done.revision), compactedRevision: out(done.compactedRevision) };
    },
    openSnapshot: () => {
      const snapshot = db.openSnapshot();
      return {
        revision: out(snapshot.revision),
        compactedRevision: out(snapshot.compactedRevision),
        read: snapshot.read,
        readRecords: (keys: readonly string[]) => snapshot.readRecords(keys).map(record),
        scan: (options) => page(snapshot.scan(options)),
        chains: (options) =>
          snapshot.chains(options).map(({ key, versions }) => ({
            key,
            versions: versions.map((v) => ({ ...v, revision: out(v.revision), createRevision: out(v.createRevision) })),
          })),
        release: snapshot.release,
      };
    },
    watches: {
      get size() {
        return db.watches.size;
      },
      close: () => db.watches.close(),
      watch: (options, sink: WatchSink): Watcher => {
        const watcher = db.watches.watch(
          { ...options, startRevision: watchStart(options.startRevision) },
          { wake: () => sink.wake(), end: (end) => sink.end({ ...end, resumeRevision: resume(end.resumeRevision) }) },
        );
        return {
          take: () => batch(watcher.take()),
          peek: () => batch(watcher.peek()),
          get pendingEvents() {
            return watcher.pendingEvents;
          },
          get resumeRevision() {
            return resume(watcher.resumeRevision);
          },
          close: () => watcher.close(),
          overflow: (why) => watcher.overflow(why),
        };
      },
    },
  } satisfies Partial<Database>;
  // Descriptors, not Object.assign: the getters must stay getters.
  return Object.defineProperties(Object.create(db) as Database, Object.getOwnPropertyDescriptors(overrides));
}
