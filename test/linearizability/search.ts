import { type EventNode, eventList, lift, unlift } from "./events.ts";
import { isUnknown, type Operation } from "./history.ts";
import { LinearizedSet, Memo } from "./memo.ts";
import type { Model } from "./model.ts";

/**
 * One step of a linearization being built: the operation placed, the states around it, and the
 * steps before it. Frames are never changed once made, so the deepest one reached stays a valid
 * record of the longest linearizable prefix after the search has backtracked past it.
 */
export interface Frame<S> {
  /** The placed operation's call event (`call.op` is its index in the partition). */
  call: EventNode;
  before: S;
  after: S;
  below: Frame<S> | null;
  depth: number;
}

export type SearchOutcome<S> =
  | { result: "ok"; configurations: number }
  | { result: "illegal"; longest: Frame<S> | null; configurations: number }
  | { result: "unknown"; configurations: number };

/** How many search steps between two looks at the clock. */
const CLOCK_STEPS = 1024;

/** Wing & Gong's search with Lowe's memoisation over one partition; see checker.ts. */
export function search<S, I, O>(
  operations: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  deadlineMs: number,
): SearchOutcome<S> {
  const head = eventList(operations);
  const linearized = new LinearizedSet(operations.length);
  const memo = new Memo(model.equal, model.hash);
  let state = model.init();
  let top = null as Frame<S> | null;
  let longest = null as Frame<S> | null;
  let event = head.next;
  for (let steps = 1; event !== null; steps++) {
    if (steps % CLOCK_STEPS === 0 && performance.now() > deadlineMs) {
      return { result: "unknown", configurations: memo.size };
    }
    const operation = operations[event.op]!;
    if (event.isCall) {
      const next = model.step(state, operation.input, isUnknown(operation) ? undefined : operation.output);
      if (next.ok) {
        linearized.toggle(event.op);
        if (memo.add(linearized, next.state)) {
          top = { call: event, before: state, after: next.state, below: top, depth: (top?.depth ?? 0) + 1 };
          if (top.depth > (longest?.depth ?? 0)) longest = top;
          state = next.state;
          lift(event);
          event = head.next;
          continue;
        }
        linearized.toggle(event.op);
      }
      event = event.next;
    } else {
      // A return no linearization so far has placed. If its operation's outcome is unknown, every
      // known return is behind us (unknown ones sort last): the rest never took effect.
      if (isUnknown(operation)) return { result: "ok", configurations: memo.size };
      if (top === null) return { result: "illegal", longest, configurations: memo.size };
      // Undo the latest placement and try the next candidate after it.
      const { call } = top;
      state = top.before;
      linearized.toggle(call.op);
      top = top.below;
      unlift(call);
      event = call.next;
    }
  }
  return { result: "ok", configurations: memo.size };
}
