/**
 * A linearizability checker for histories of HomeKV and of the Raft simulator's state machine.
 *
 * What is checked: a history (history.ts) is linearizable against a sequential model (model.ts) if
 * every operation can be given one instant between its call and its return at which it takes
 * effect, such that the operations, run one at a time in the order of those instants from
 * `model.init()`, produce exactly the outputs the clients saw. This is Herlihy & Wing's condition;
 * it is what "a read sees the latest completed write" means with concurrency.
 *
 * Algorithm: Wing & Gong's depth-first search for such an order, with Lowe's improvements, the
 * approach of Porcupine (written here from the papers' ideas):
 * - the history is a doubly linked list of call and return events in time order (events.ts). The
 *   search tries as the next operation each call that precedes the first return still in the list
 *   (an operation cannot take effect after another has returned if it was called later); placing
 *   one lifts its two events out of the list and restarts from the head; reaching a return that is
 *   still in the list means no placement works from here, so the search undoes the latest one and
 *   tries the next candidate after it.
 * - memoisation (memo.ts): each configuration reached, the set of placed operations as a bitset
 *   together with the model state, is remembered; reaching it again by another order is skipped.
 *   A configuration that only adds unknown-outcome operations to one already reached with the
 *   same state is skipped too (those may never take effect, so it offers nothing new).
 * - candidate order (search.ts): a legal read-only operation is placed at once, without trying
 *   alternatives (sound: it changes nothing, and nothing pending must precede it); operations of
 *   unknown outcome are tried after those of known outcome.
 * - P-compositionality: the model's `partition` splits the history into independent shares
 *   (one per key for the key-value model) that are searched separately. Linearizability is local,
 *   so the history is linearizable iff every share is.
 * Complexity: the search is exponential in the worst case (the problem is NP-complete), bounded by
 * the distinct configurations, at most 2^n × (states) for n operations in a partition. With real
 * histories only operations that overlap in time are reordered, so the work grows like
 * n × 2^c for c operations in flight at once on one partition: 20,000 operations over 100 keys
 * from 20 clients take well under a second, 2,000 on one key from 8 clients too, but 20 clients
 * always in flight on one key can take longer than any useful budget. Memory: one remembered
 * configuration (two bitsets of n bits and a state) per configuration reached.
 *
 * Unknown outcomes: an operation with `ret = Infinity` may take effect at any instant after its
 * call, or never. Its return sorts after every known one, so the search may place it anywhere after
 * its call; once every operation with a known outcome is placed, the unplaced unknown ones are
 * taken never to have happened. Its output is not checked: the model is stepped with `undefined`.
 * One that is read-only (`model.readOnly`) is dropped before the search: it cannot have mattered.
 *
 * Results: "ok" means linearizable. "illegal" means not, with an explanation (explain.ts): the
 * partition, the longest linearizable prefix found and the operations that could not come next.
 * "unknown" means the time budget ran out before the search concluded: a test must treat it as a
 * failure to conclude (report it, shrink the history, raise the budget), never as a pass.
 */
import { explainIllegal, type Illegal } from "./explain.ts";
import { assertWellFormed, type History, isUnknown, type Operation } from "./history.ts";
import type { Model, Partition } from "./model.ts";
import { search } from "./search.ts";

export interface CheckOptions {
  /** The time budget for the whole history, all partitions together. */
  timeoutMs: number;
}

/** Figures about the search, for a test to print when tuning budgets. */
export interface CheckStats {
  partitions: number;
  /** Configurations remembered, summed over the partitions searched. */
  configurations: number;
  elapsedMs: number;
}

export type CheckResult<S, I, O> =
  | ({ result: "ok" } & CheckStats)
  | (Illegal<S, I, O> & CheckStats)
  | ({ result: "unknown"; explanation: string } & CheckStats);

export function checkLinearizability<S, I, O>(
  history: History<I, O>,
  model: Model<S, I, O>,
  options: CheckOptions,
): CheckResult<S, I, O> {
  assertWellFormed(history);
  const startMs = performance.now();
  const deadlineMs = startMs + options.timeoutMs;
  const indexes = new Map<Operation<I, O>, number>(history.map((operation, index) => [operation, index]));
  const indexOf = (operation: Operation<I, O>) => {
    const index = indexes.get(operation);
    if (index === undefined) throw new Error("model.partition returned an operation that is not in the history");
    return index;
  };
  const partitions: Partition<I, O>[] = model.partition?.(history) ?? [
    { label: "the whole history", operations: [...history] },
  ];
  let configurations = 0;
  const stats = () => ({
    partitions: partitions.length,
    configurations,
    elapsedMs: performance.now() - startMs,
  });
  for (const [done, { label, operations: all }] of partitions.entries()) {
    // A read-only operation of unknown outcome changed nothing and has no answer to check.
    const operations = all.filter((o) => !(isUnknown(o) && model.readOnly?.(o.input, undefined)));
    const outcome = search(operations, model, deadlineMs);
    configurations += outcome.configurations;
    if (outcome.result === "illegal") {
      return { ...explainIllegal(label, operations, indexOf, outcome.longest, model), ...stats() };
    }
    if (outcome.result === "unknown") {
      const explanation =
        `no verdict: the ${options.timeoutMs} ms budget ran out while searching ${label} ` +
        `(${operations.length} operations), after ${done} of ${partitions.length} partitions were found linearizable`;
      return { result: "unknown", explanation, ...stats() };
    }
  }
  return { result: "ok", ...stats() };
}
