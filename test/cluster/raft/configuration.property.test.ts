import { expect, test } from "bun:test";
import fc from "fast-check";
import { ConfigTracker, Configuration } from "../../../src/cluster/raft/configuration.ts";
import type { ConfChange, ConfState } from "../../../src/cluster/raft/types.ts";

/**
 * Model-based test of ConfigTracker.observe, its fast path for writes with no change among them
 * included: after every write the core reports (its own proposals at the end, a leader's append
 * over a suffix, an old append that repeats entries already held, a heartbeat), the configuration
 * must be the base with every change in the log applied in order, and `at(i)` the same up to i.
 */

interface LogEntry {
  index: number;
  conf?: ConfChange;
}

type Write =
  | { kind: "propose"; confs: (ConfChange | undefined)[] }
  | { kind: "overwrite"; back: number; kept: number; confs: (ConfChange | undefined)[] }
  | { kind: "repeat"; back: number; count: number }
  | { kind: "heartbeat" };

const BASE: ConfState = { voters: [1, 2, 3], learners: [] };
const changeArb: fc.Arbitrary<ConfChange | undefined> = fc.option(
  fc.record({ type: fc.constantFrom("addLearner", "addVoter", "remove"), node: fc.integer({ min: 1, max: 5 }) }),
  { nil: undefined, freq: 3 },
);
const confsArb = fc.array(changeArb, { minLength: 1, maxLength: 4 });
const writeArb: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ kind: fc.constant("propose"), confs: confsArb }),
  fc.record({ kind: fc.constant("overwrite"), back: fc.nat({ max: 6 }), kept: fc.nat({ max: 2 }), confs: confsArb }),
  fc.record({ kind: fc.constant("repeat"), back: fc.nat({ max: 6 }), count: fc.nat({ max: 3 }) }),
  fc.constant({ kind: "heartbeat" as const }),
);

/** The members as of `upTo`, from scratch: the base, then every change in the log up to it. */
function fromScratch(log: readonly LogEntry[], upTo: number): ConfState {
  const config = new Configuration(BASE);
  for (const entry of log) if (entry.conf && entry.index <= upTo) config.apply(entry.conf);
  return config.state();
}

const entriesFrom = (from: number, confs: readonly (ConfChange | undefined)[]): LogEntry[] =>
  confs.map((conf, i) => (conf ? { index: from + i, conf } : { index: from + i }));

test("the configuration follows the log through every kind of write, fast path or not", () => {
  fc.assert(
    fc.property(fc.array(writeArb, { minLength: 1, maxLength: 30 }), (writes) => {
      const tracker = new ConfigTracker(BASE);
      let log: LogEntry[] = [];
      for (const write of writes) {
        let written: LogEntry[];
        switch (write.kind) {
          case "propose":
            written = entriesFrom(log.length + 1, write.confs);
            log = [...log, ...written];
            break;
          case "overwrite": {
            // A leader's append: a prefix the follower holds already, then entries replacing the rest.
            const from = Math.max(1, log.length + 1 - write.back);
            const kept = log.slice(from - 1, from - 1 + write.kept);
            written = [...kept, ...entriesFrom(from + kept.length, write.confs)];
            log = [...log.slice(0, from - 1), ...written];
            break;
          }
          case "repeat": {
            // An old append delivered late: entries held already, the log goes on after them.
            const from = Math.max(1, log.length + 1 - write.back);
            written = log.slice(from - 1, from - 1 + write.count);
            break;
          }
          case "heartbeat":
            written = [];
            break;
        }
        tracker.observe(written, log.length);
        expect(tracker.current.state()).toEqual(fromScratch(log, log.length));
        const lastChange = [...log].reverse().find((e) => e.conf)?.index ?? 0;
        expect(tracker.lastChangeIndex).toBe(lastChange);
        for (let index = 0; index <= log.length; index++)
          expect(tracker.at(index).state()).toEqual(fromScratch(log, index));
      }
    }),
    { numRuns: 3_000 },
  );
});
