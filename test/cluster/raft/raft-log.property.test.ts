import { expect, test } from "bun:test";
import fc from "fast-check";
import { RaftLog } from "../../../src/cluster/raft/raft-log.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { Entry, Snapshot } from "../../../src/cluster/raft/types.ts";

/**
 * Model-based test of the core's log (raft-log.ts): the model is the whole log as one array after
 * a snapshot index. Random appends (at the end, as a leader's proposals, which grow the unpersisted
 * entries in place; or over a suffix, as a new leader's, in a higher term), snapshots from a leader,
 * and Readys taken, persisted and advanced with any of those happening in between (the driver
 * awaits the disk meanwhile). After every step the log must read as the model does, what storage
 * holds plus what is unstable must be the model, and a Ready already handed out must not change.
 */

type Step =
  | { kind: "append"; back: number; count: number }
  | { kind: "take" }
  | { kind: "persist" }
  | { kind: "restore"; ahead: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("append"),
      back: fc.nat({ max: 6 }),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: "take" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "persist" as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restore"), ahead: fc.integer({ min: -3, max: 3 }) }) },
);

const describe = (entries: readonly Entry[]) => entries.map((e) => `${e.index}:${e.term}`).join(" ");

test("the log reads as a model of it through appends, Readys persisted late, and snapshots", () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
      const storage = new MemoryStorage();
      const log = new RaftLog(storage);
      let model: Entry[] = [];
      let snapshot: Snapshot = storage.snapshot();
      let term = 1;
      /** A Ready handed out and not advanced yet, with what it held when it was taken. */
      let ready: { snapshot: Snapshot | undefined; entries: Entry[]; seen: string } | undefined;
      const last = () => snapshot.index + model.length;
      /** What the driver does with a Ready once its write is done: storage takes it, then the log is told. */
      const persist = (written: { snapshot: Snapshot | undefined; entries: readonly Entry[] }) => {
        if (written.snapshot) storage.applySnapshot(written.snapshot);
        storage.append(written.entries);
        if (written.snapshot) log.snapshotInstalled(written.snapshot.index);
        const lastWritten = written.entries[written.entries.length - 1];
        if (lastWritten) log.stableTo(lastWritten.index, lastWritten.term);
      };
      for (const step of steps) {
        switch (step.kind) {
          case "append": {
            const from = Math.max(snapshot.index + 1, last() + 1 - step.back);
            // Over a suffix: a leader of a later term replaces it (a leader's own appends are at the end).
            if (from <= last()) term++;
            const entries = Array.from({ length: step.count }, (_, i) => ({
              index: from + i,
              term,
              data: new Uint8Array([from + i, term]),
            }));
            log.append(entries);
            model = [...model.slice(0, from - snapshot.index - 1), ...entries];
            break;
          }
          case "take":
            if (ready) break;
            ready = { snapshot: log.pendingSnapshot, entries: log.unstable(), seen: "" };
            ready.seen = describe(ready.entries);
            break;
          case "persist": {
            if (!ready) break;
            expect(describe(ready.entries)).toBe(ready.seen);
            persist(ready);
            ready = undefined;
            break;
          }
          case "restore": {
            const index = Math.max(log.committed + 1, last() + step.ahead);
            term++;
            snapshot = { index, term, data: new Uint8Array([index]) };
            log.restore(snapshot);
            model = [];
            break;
          }
        }
        expect(log.lastIndex()).toBe(last());
        expect(log.snapshotIndex()).toBe(snapshot.index);
        expect(log.term(snapshot.index)).toBe(snapshot.term);
        expect(describe(log.slice(snapshot.index + 1, last() + 1))).toBe(describe(model));
        for (let lo = snapshot.index + 1; lo <= last(); lo++)
          expect(describe(log.slice(lo, lo + 2))).toBe(
            describe(model.slice(lo - snapshot.index - 1, lo - snapshot.index + 1)),
          );
        const unstable = log.unstable();
        expect(log.hasUnstable()).toBe(unstable.length > 0);
        // Unstable is a suffix of the model; below it, the log reads what storage holds.
        expect(describe(unstable)).toBe(describe(model.slice(model.length - unstable.length)));
        if (ready) expect(describe(ready.entries)).toBe(ready.seen);
      }
      // Drained: every entry persisted, storage holds the model.
      for (let round = 0; round < 3 && (ready || log.hasUnstable() || log.pendingSnapshot); round++) {
        persist(ready ?? { snapshot: log.pendingSnapshot, entries: log.unstable() });
        ready = undefined;
      }
      expect(log.hasUnstable()).toBe(false);
      expect(storage.lastIndex()).toBe(last());
      expect(describe(storage.entries(snapshot.index + 1, last() + 1))).toBe(describe(model));
    }),
    { numRuns: 3_000 },
  );
});
