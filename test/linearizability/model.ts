import type { History, Operation } from "./history.ts";

/** The outcome of trying one operation on one state: illegal here, or the state it leads to. */
export type StepResult<S> = { ok: true; state: S } | { ok: false };

/** A share of a history that can be checked on its own, and what to call it in a diagnostic. */
export interface Partition<I, O> {
  label: string;
  operations: Operation<I, O>[];
}

/**
 * The sequential specification a history is checked against. States are values: `step` never
 * mutates the state it is given. `equal` and `hash` let the checker memoise (set of linearized
 * operations, state) pairs it has already explored.
 */
export interface Model<S, I, O> {
  init(): S;
  /** Can `input` take effect on `state` and answer `output`? `undefined` output: any answer will do. */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  equal(a: S, b: S): boolean;
  /** A 32-bit integer; equal states must hash alike. */
  hash(state: S): number;
  /**
   * Split a history into shares that touch disjoint parts of the state (P-compositionality: the
   * whole is linearizable iff every share is). Without it the history is one partition.
   */
  partition?(history: History<I, O>): Partition<I, O>[];
  /**
   * True when the operation, answering `output` (`undefined`: unknown), leaves every state it is
   * legal in unchanged (a read; a compare-and-set that failed). The search places such an operation
   * as soon as it is legal without trying alternatives, and drops one of unknown outcome. Saying
   * false is always safe, only slower.
   */
  readOnly?(input: I, output: O | undefined): boolean;
  describeOperation(input: I, output: O | undefined): string;
  describeState(state: S): string;
}

/**
 * A deterministic model given as "what would this input answer on this state", from which `step`
 * follows. Test generators use `apply` to produce outputs of a sequential run.
 */
export interface SequentialModel<S, I, O> extends Model<S, I, O> {
  apply(state: S, input: I): { state: S; output: O | undefined };
}

/** `step` for a deterministic model: legal when the recorded output is what `apply` answers. */
export function stepByApply<S, I, O>(
  apply: (state: S, input: I) => { state: S; output: O | undefined },
  sameOutput: (expected: O | undefined, actual: O) => boolean,
): (state: S, input: I, output: O | undefined) => StepResult<S> {
  return (state, input, output) => {
    const next = apply(state, input);
    return output === undefined || sameOutput(next.output, output) ? { ok: true, state: next.state } : { ok: false };
  };
}

/** FNV-1a over UTF-16 code units: a cheap, stable 32-bit hash for memoisation keys. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/** `"text"` for a value, `(none)` for absence. */
export const formatValue = (value: string | null): string => (value === null ? "(none)" : JSON.stringify(value));
