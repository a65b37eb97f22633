import { test } from "bun:test";
import fc from "fast-check";
import { createFlsmStore } from "../../../src/storage/flsm/flsm-store.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import type { Compare, WriteOp } from "../../../src/storage/ops.ts";
import { MemoryLevels } from "./memory-levels.ts";
import { type Command, type Engine, expectSameState, observe, step } from "./store-model.ts";

/**
 * The model test of flsm-store.property.test.ts on two hot keys with long histories: chains of more
 * than 32 versions in one memtable (they get a ring), deletes among them, compactions and GC far
 * behind or right at the head, snapshots, and freezes/flushes between: the memtable's GC with a
 * ring and a tombstone kept for an older run must answer as the memory engine does.
 */
const hot = fc.constantFrom("a", "b");
const hotWrite: fc.Arbitrary<WriteOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ key: hot, value: fc.uint8Array({ maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ key: hot, value: fc.constant(null) }) },
);
const hotCommand: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      ops: fc.array(hotWrite, { minLength: 1, maxLength: 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("compact" as const), back: fc.nat({ max: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("open" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("gc" as const), maxKeys: fc.integer({ min: 1, max: 4 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("readAt" as const),
      offset: fc.nat({ max: 80 }),
      compares: fc.constant<Compare[]>([]),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("scan" as const),
      offset: fc.nat({ max: 80 }),
      scan: fc.record({ limit: fc.integer({ min: 1, max: 3 }), reverse: fc.boolean() }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("changes" as const),
      offset: fc.nat({ max: 80 }),
      limit: fc.integer({ min: 1, max: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("settle" as const) }) },
);

test("long histories of two keys in the FLSM store answer as in the memory engine", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(0, 5, 40, 100, Infinity),
      fc.constantFrom(1_500, 4_000, 1 << 20),
      fc.boolean(),
      fc.array(hotCommand, { minLength: 40, maxLength: 250, size: "max" }),
      async (historyRevisions, memtableBytes, flushed, commands) => {
        let levels: MemoryLevels | undefined;
        const flsmEngine: Engine = {
          create(options) {
            levels = flushed ? new MemoryLevels() : undefined;
            return createFlsmStore({ ...options, memtableBytes, levels, flush: levels?.flush, report: () => {} });
          },
        };
        const model = observe({ create: (options) => createMvccStore(options) }, historyRevisions);
        const flsm = observe(flsmEngine, historyRevisions);
        for (const cmd of commands) {
          await step(model, flsm, cmd, {
            setFlushesFailing: () => {},
            settle: async () => {
              for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
            },
          });
          expectSameState(model, flsm);
        }
        for (const s of [...model.snapshots, ...flsm.snapshots]) s.release();
      },
    ),
    { numRuns: 150 },
  );
}, 200_000);
