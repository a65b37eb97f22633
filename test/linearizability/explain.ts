import { formatTime, isUnknown, type Operation } from "./history.ts";
import type { Model } from "./model.ts";
import type { Frame } from "./search.ts";

/** An operation of the longest linearizable prefix, and the state right after it. */
export interface PlacedOperation<S, I, O> {
  /** Its index in the history given to the checker. */
  index: number;
  operation: Operation<I, O>;
  state: S;
}

/** An operation that could have come next after the longest prefix, and why it did not. */
export interface StuckOperation<I, O> {
  index: number;
  operation: Operation<I, O>;
  /** "impossible": its output cannot be answered in the prefix's final state; "dead end": it can, but nothing fits after. */
  reason: "impossible" | "dead end";
}

export interface Illegal<S, I, O> {
  result: "illegal";
  /** The label of the partition that is not linearizable (for the key-value model, its keys). */
  partition: string;
  prefix: PlacedOperation<S, I, O>[];
  stuck: StuckOperation<I, O>[];
  /** For people: the above, one operation a line, with times. */
  explanation: string;
}

/** How many operations of the prefix the explanation shows, ending with the last. */
const PREFIX_SHOWN = 12;

/**
 * Why a partition is not linearizable: its longest linearizable prefix found, then the operations
 * that could come next (called before the earliest return still pending) and why each cannot.
 */
export function explainIllegal<S, I, O>(
  label: string,
  operations: readonly Operation<I, O>[],
  indexOf: (operation: Operation<I, O>) => number,
  longest: Frame<S> | null,
  model: Model<S, I, O>,
): Illegal<S, I, O> {
  const prefix: PlacedOperation<S, I, O>[] = [];
  for (let frame = longest; frame !== null; frame = frame.below) {
    const operation = operations[frame.call.op]!;
    prefix.push({ index: indexOf(operation), operation, state: frame.after });
  }
  prefix.reverse();
  const state = longest?.after ?? model.init();
  const placed = new Set(prefix.map((p) => p.operation));
  const pending = operations.filter((o) => !placed.has(o));
  const deadline = pending.reduce((earliest, o) => Math.min(earliest, o.ret), Number.POSITIVE_INFINITY);
  const stuck = pending
    .filter((o) => o.call <= deadline)
    .sort((a, b) => a.call - b.call)
    .map((operation): StuckOperation<I, O> => {
      const output = isUnknown(operation) ? undefined : operation.output;
      const reason = model.step(state, operation.input, output).ok ? "dead end" : "impossible";
      return { index: indexOf(operation), operation, reason };
    });
  const line = (index: number, o: Operation<I, O>) =>
    `  #${index} client ${o.client} [${o.call}, ${formatTime(o.ret)}] ${model.describeOperation(o.input, isUnknown(o) ? undefined : o.output)}`;
  const hidden = Math.max(0, prefix.length - PREFIX_SHOWN);
  const explanation = [
    `not linearizable: ${label} (${operations.length} operations)`,
    `longest linearizable prefix found: ${prefix.length} operations${hidden > 0 ? `, the last ${PREFIX_SHOWN} shown` : ""}`,
    ...prefix.slice(hidden).map((p) => `${line(p.index, p.operation)}  ⇒ ${model.describeState(p.state)}`),
    `after it the state is ${model.describeState(state)}, and none of these can come next:`,
    ...stuck.map(
      (s) =>
        `${line(s.index, s.operation)}  ${s.reason === "impossible" ? "its output is impossible here" : "fits here, but then nothing fits after it"}`,
    ),
    `(one of them must take effect by ${formatTime(deadline)}, when the earliest of them returned)`,
  ].join("\n");
  return { result: "illegal", partition: label, prefix, stuck, explanation };
}
