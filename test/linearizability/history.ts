/**
 * A history: what clients saw of a concurrent object, one record per operation.
 *
 * `call` and `ret` are real-time invocation and response instants on one clock shared by all
 * clients (simulator ticks, or one process's monotonic clock). An operation whose outcome is
 * unknown (it timed out, its connection was lost) has `ret = Infinity`: it may have taken effect
 * at any instant after its call, or never, and its output (if any was recorded) is not checked.
 *
 *   client A  |--put x=1--|                        put returned: x=1 is in
 *   client B        |--get x → 1--|                overlaps the put: may see 0 or 1
 *   client C                         |--get x → 0--|   starts after the put returned: must see 1
 */
export interface Operation<I, O> {
  /** Who issued it; only for diagnostics (a client that lost an answer may carry on). */
  client: number | string;
  input: I;
  /** What the client received; `undefined` when there is nothing to check (a write's empty reply). */
  output?: O;
  call: number;
  /** `Infinity` when the outcome is unknown. */
  ret: number;
}

export type History<I, O> = readonly Operation<I, O>[];

export const isUnknown = (op: Operation<unknown, unknown>): boolean => op.ret === Number.POSITIVE_INFINITY;

/** Throws on a record that no client could have produced, which would make any verdict meaningless. */
export function assertWellFormed(history: History<unknown, unknown>): void {
  history.forEach((op, index) => {
    if (!Number.isFinite(op.call)) throw new Error(`operation ${index}: call ${op.call} is not a finite time`);
    if (Number.isNaN(op.ret) || op.ret < op.call) {
      throw new Error(`operation ${index}: ret ${op.ret} is before its call ${op.call}`);
    }
  });
}

/** "12" for a known instant, "?" for the response of an operation whose outcome is unknown. */
export const formatTime = (time: number): string => (Number.isFinite(time) ? String(time) : "?");
