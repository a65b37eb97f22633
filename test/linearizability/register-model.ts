import { formatValue, hashString, type SequentialModel, stepByApply } from "./model.ts";

/** A register's value; `null` before the first write. */
export type RegisterValue = string | null;

export type RegisterInput =
  | { op: "read" }
  | { op: "write"; value: string }
  /** Compare-and-set: writes `value` only if the register holds `expected`; answers whether it did. */
  | { op: "cas"; expected: RegisterValue; value: string };

/** A read answers the value it saw, a compare-and-set whether it swapped; a write answers nothing. */
export type RegisterOutput = RegisterValue | boolean;

function apply(
  state: RegisterValue,
  input: RegisterInput,
): { state: RegisterValue; output: RegisterOutput | undefined } {
  switch (input.op) {
    case "read":
      return { state, output: state };
    case "write":
      return { state: input.value, output: undefined };
    case "cas":
      return state === input.expected ? { state: input.value, output: true } : { state, output: false };
  }
}

function describeOperation(input: RegisterInput, output: RegisterOutput | undefined): string {
  const answer = output === undefined ? "" : ` → ${typeof output === "boolean" ? output : formatValue(output)}`;
  switch (input.op) {
    case "read":
      return `read${answer}`;
    case "write":
      return `write ${formatValue(input.value)}${answer}`;
    case "cas":
      return `cas ${formatValue(input.expected)}→${formatValue(input.value)}${answer}`;
  }
}

/** One register: the state machine the Raft simulator replicates. */
export const registerModel: SequentialModel<RegisterValue, RegisterInput, RegisterOutput> = {
  init: () => null,
  apply,
  step: stepByApply(apply, (expected, actual) => expected === actual),
  readOnly: (input, output) => input.op === "read" || (input.op === "cas" && output === false),
  equal: (a, b) => a === b,
  hash: (state) => (state === null ? 0 : hashString(state)),
  describeOperation,
  describeState: formatValue,
};
