import { test } from "bun:test";
import fc from "fast-check";
import { createFlsmStore } from "../../../src/storage/flsm/flsm-store.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import { MemoryLevels } from "./memory-levels.ts";
import { command, type Engine, expectSameState, gapsArb, observe, restart, spacedBy, step } from "./store-model.ts";

/**
 * Model-based test of the FLSM store (store-model.ts): the memory engine is the model. Random
 * operation sequences (batches, transactions, expiry, compaction, snapshots, GC, restarts from a
 * dump), at revisions dense or with gaps, run against both,
 * the FLSM store with a memtable so small that it freezes every command or few, its frozen
 * memtables kept in memory or flushed to stand-in levels (in a later turn, sometimes failing); every
 * read, page, change list, event and TTL report must be the same.
 */

test("the FLSM store answers every operation as the memory engine does", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 4 }),
      // 1 byte: every command freezes the memtable; 2,000: a few commands share one.
      fc.constantFrom(1, 600, 2_000, 1 << 20),
      fc.boolean(),
      gapsArb,
      fc.array(command, { maxLength: 60, size: "max" }),
      async (historyRevisions, memtableBytes, flushed, gaps, commands) => {
        const nextRevision = spacedBy(gaps);
        // The stand-in levels of the FLSM store of the moment (a restored store gets its own).
        let levels: MemoryLevels | undefined;
        const flsmEngine: Engine = {
          create(options) {
            levels = flushed ? new MemoryLevels() : undefined;
            return createFlsmStore({ ...options, memtableBytes, levels, flush: levels?.flush, report: () => {} });
          },
        };
        const memoryEngine: Engine = { create: (options) => createMvccStore(options) };
        let model = observe(memoryEngine, historyRevisions);
        let flsm = observe(flsmEngine, historyRevisions);
        for (const cmd of commands) {
          if (cmd.kind === "restart") {
            model = restart(model, memoryEngine, historyRevisions);
            flsm = restart(flsm, flsmEngine, historyRevisions);
          } else
            await step(model, flsm, cmd, {
              setFlushesFailing: (failing) => {
                if (levels) levels.failing = failing;
              },
              // Flushes in flight complete (the stand-in levels take them in a later turn).
              settle: async () => {
                for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
              },
              nextRevision,
            });
          expectSameState(model, flsm);
        }
      },
    ),
    { numRuns: 200 },
  );
}, 60_000);
