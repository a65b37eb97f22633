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
  /** The round of candidates it was placed in (see `Round`). */
  round: Round;
}

export type SearchOutcome<S> =
  | { result: "ok"; configurations: number }
  | { result: "illegal"; longest: Frame<S> | null; configurations: number }
  | { result: "unknown"; configurations: number };

/**
 * The candidates at a configuration (the calls before the first return still in the list) are
 * tried in rounds, each a scan of the list; the order changes only how soon a linearization is
 * found, never whether:
 * - ReadOnly: a legal read-only operation is placed without alternatives (if any linearization
 *   follows, one with it placed first does: it changes nothing, and nothing pending must precede
 *   it), so when what follows it fails, the configuration fails;
 * - Known: the other operations of known outcome;
 * - Unknown: those of unknown outcome, needed only when something observed them; trying them
 *   last lets the memo's subset rule cut the configurations that place them for nothing.
 */
enum Round {
  ReadOnly = 0,
  Known = 1,
  Unknown = 2,
}

/** How many search steps between two looks at the clock. */
const CLOCK_STEPS = 1024;

/**
 * Wing & Gong's search with Lowe's memoisation over one partition; see checker.ts. The operations
 * must not include unknown read-only ones (the checker drops them: they cannot matter).
 */
export function search<S, I, O>(
  operations: readonly Operation<I, O>[],
  model: Model<S, I, O>,
  deadlineMs: number,
): SearchOutcome<S> {
  const outputs = operations.map((o) => (isUnknown(o) ? undefined : o.output));
  const unknown = operations.map(isUnknown);
  const readOnly = operations.map((o, i) => model.readOnly?.(o.input, outputs[i]) === true);
  const head = eventList(operations);
  const placed = new LinearizedSet(operations.length);
  const memo = new Memo(model.equal, model.hash);
  const eligible = (op: number, round: Round): boolean =>
    round === Round.ReadOnly ? readOnly[op]! : !readOnly[op]! && unknown[op] === (round === Round.Unknown);
  let state = model.init();
  let top = null as Frame<S> | null;
  let longest = null as Frame<S> | null;
  let round = Round.ReadOnly;
  let event = head.next;
  for (let steps = 1; event !== null; steps++) {
    if (steps % CLOCK_STEPS === 0 && performance.now() > deadlineMs) {
      return { result: "unknown", configurations: memo.size };
    }
    const op = event.op;
    if (event.isCall) {
      const next = eligible(op, round) ? model.step(state, operations[op]!.input, outputs[op]) : undefined;
      if (next?.ok) {
        placed.toggle(op, unknown[op]!);
        if (memo.add(placed, next.state)) {
          top = { call: event, before: state, after: next.state, below: top, depth: (top?.depth ?? 0) + 1, round };
          if (top.depth > (longest?.depth ?? 0)) longest = top;
          state = next.state;
          lift(event);
          event = head.next;
          round = Round.ReadOnly;
          continue;
        }
        placed.toggle(op, unknown[op]!);
      }
      event = event.next;
      continue;
    }
    // The first return still in the list. If its outcome is unknown, every known return is behind
    // us (unknown ones sort last): done, the unplaced rest never took effect.
    if (unknown[op]) return { result: "ok", configurations: memo.size };
    if (round !== Round.Unknown) {
      round++;
      event = head.next;
      continue;
    }
    // No candidate works here: undo placements up to one that had alternatives, and go on after it.
    let undone: Frame<S>;
    do {
      if (top === null) return { result: "illegal", longest, configurations: memo.size };
      undone = top;
      state = undone.before;
      placed.toggle(undone.call.op, unknown[undone.call.op]!);
      top = undone.below;
      unlift(undone.call);
    } while (undone.round === Round.ReadOnly);
    round = undone.round;
    event = undone.call.next;
  }
  return { result: "ok", configurations: memo.size };
}
