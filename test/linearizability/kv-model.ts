import type { History, Operation } from "./history.ts";
import { formatValue, hashString, type Partition, type SequentialModel, stepByApply } from "./model.ts";

/** The store's contents: key → value; a missing key has no value. */
export type KvState = ReadonlyMap<string, string>;

export type KvRecord = { key: string; value: string };
/** Holds when the key's value equals `value` (`null`: the key is missing). */
export type KvCompare = { key: string; value: string | null };
export type KvTxnOp = { type: "get"; key: string } | ({ type: "put" } & KvRecord) | { type: "delete"; key: string };

/** HomeKV's operations as a client sees them; each is atomic, whatever keys it touches. */
export type KvInput =
  | { op: "get"; keys: string[] }
  /** A batch of puts, applied together (the Set RPC). */
  | { op: "put"; records: KvRecord[] }
  | { op: "delete"; keys: string[] }
  /** If every compare holds run `success`, else `failure`; its gets read the writes before them. */
  | { op: "txn"; compares: KvCompare[]; success: KvTxnOp[]; failure: KvTxnOp[] };

/**
 * What the client received: the values its gets read in order (get, txn), how many keys a delete
 * removed, whether a txn's compares held. A put answers nothing to check.
 */
export interface KvOutput {
  values?: (string | null)[];
  deleted?: number;
  succeeded?: boolean;
}

export function keysOf(input: KvInput): string[] {
  switch (input.op) {
    case "get":
    case "delete":
      return input.keys;
    case "put":
      return input.records.map((r) => r.key);
    case "txn":
      return [...input.compares, ...input.success, ...input.failure].map((x) => x.key);
  }
}

function apply(state: KvState, input: KvInput): { state: KvState; output: KvOutput | undefined } {
  const read = (key: string) => state.get(key) ?? null;
  switch (input.op) {
    case "get":
      return { state, output: { values: input.keys.map(read) } };
    case "put": {
      const next = new Map(state);
      for (const { key, value } of input.records) next.set(key, value);
      return { state: next, output: undefined };
    }
    case "delete": {
      const next = new Map(state);
      const deleted = input.keys.filter((key) => next.delete(key)).length;
      return { state: deleted === 0 ? state : next, output: { deleted } };
    }
    case "txn": {
      const succeeded = input.compares.every((c) => read(c.key) === c.value);
      const ops = succeeded ? input.success : input.failure;
      if (ops.every((o) => o.type === "get"))
        return { state, output: { succeeded, values: ops.map((o) => read(o.key)) } };
      const next = new Map(state);
      const values: (string | null)[] = [];
      for (const o of ops) {
        if (o.type === "get") values.push(next.get(o.key) ?? null);
        else if (o.type === "put") next.set(o.key, o.value);
        else next.delete(o.key);
      }
      return { state: next, output: { succeeded, values } };
    }
  }
}

const sameValues = (a: (string | null)[] | undefined, b: (string | null)[] | undefined) =>
  a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]));

function sameOutput(expected: KvOutput | undefined, actual: KvOutput): boolean {
  if (expected === undefined) return true;
  return (
    expected.deleted === actual.deleted &&
    expected.succeeded === actual.succeeded &&
    sameValues(expected.values, actual.values)
  );
}

function equal(a: KvState, b: KvState): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [key, value] of a) if (b.get(key) !== value) return false;
  return true;
}

/** Independent of insertion order, as `equal` is. */
function hash(state: KvState): number {
  let sum = 0;
  for (const [key, value] of state) sum = (sum + Math.imul(hashString(key), 31) + hashString(value)) | 0;
  return sum;
}

/**
 * Operations that share a key, directly or through others, are checked together; the rest apart.
 * When every operation touches one key this is one partition per key; a multi-key operation joins
 * its keys' partitions (a batch over every key makes one).
 */
function partition(history: History<KvInput, KvOutput>): Partition<KvInput, KvOutput>[] {
  const parent = new Map<string, string>();
  const root = (key: string): string => {
    let r = key;
    for (let up = parent.get(r); up !== undefined && up !== r; up = parent.get(r)) r = up;
    parent.set(key, r);
    return r;
  };
  for (const op of history) {
    const [first, ...rest] = keysOf(op.input);
    if (first === undefined) continue;
    if (!parent.has(first)) parent.set(first, first);
    for (const key of rest) {
      if (!parent.has(key)) parent.set(key, key);
      parent.set(root(key), root(first));
    }
  }
  const groups = new Map<string, { keys: Set<string>; operations: Operation<KvInput, KvOutput>[] }>();
  for (const op of history) {
    const [first] = keysOf(op.input);
    const id = first === undefined ? "" : root(first);
    let group = groups.get(id);
    if (group === undefined) groups.set(id, (group = { keys: new Set(), operations: [] }));
    for (const key of keysOf(op.input)) group.keys.add(key);
    group.operations.push(op);
  }
  return [...groups.values()].map(({ keys, operations }) => ({ label: describeKeys([...keys]), operations }));
}

function describeKeys(keys: string[]): string {
  if (keys.length === 0) return "operations on no key";
  const shown = keys.slice(0, 5).map((k) => JSON.stringify(k));
  return `key${keys.length > 1 ? "s" : ""} ${shown.join(", ")}${keys.length > 5 ? ` and ${keys.length - 5} more` : ""}`;
}

const describeTxnOp = (o: KvTxnOp) =>
  o.type === "put" ? `put ${o.key}=${formatValue(o.value)}` : `${o.type} ${JSON.stringify(o.key)}`;

function describeOperation(input: KvInput, output: KvOutput | undefined): string {
  const values = output?.values?.map(formatValue).join(", ");
  switch (input.op) {
    case "get":
      return `get ${input.keys.map((k) => JSON.stringify(k)).join(", ")}${values === undefined ? "" : ` → ${values}`}`;
    case "put":
      return `put ${input.records.map((r) => `${r.key}=${formatValue(r.value)}`).join(" ")}`;
    case "delete":
      return `delete ${input.keys.map((k) => JSON.stringify(k)).join(", ")}${output?.deleted === undefined ? "" : ` → ${output.deleted} deleted`}`;
    case "txn": {
      const when = input.compares.map((c) => `${c.key}==${formatValue(c.value)}`).join(" && ") || "true";
      const branch = (ops: KvTxnOp[]) => ops.map(describeTxnOp).join("; ") || "nothing";
      const outcome =
        output?.succeeded === undefined ? "" : ` → ${output.succeeded ? "then" : "else"}${values ? `: ${values}` : ""}`;
      return `txn if ${when} then ${branch(input.success)} else ${branch(input.failure)}${outcome}`;
    }
  }
}

function describeState(state: KvState): string {
  const entries = [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${k}=${formatValue(v)}`).join(", ")}}`;
}

/** Gets; a delete that deleted nothing; a txn whose branch taken (or both, if unknown) only gets. */
function readOnly(input: KvInput, output: KvOutput | undefined): boolean {
  const onlyGets = (ops: KvTxnOp[]) => ops.every((o) => o.type === "get");
  switch (input.op) {
    case "get":
      return true;
    case "put":
      return false;
    case "delete":
      return output?.deleted === 0;
    case "txn":
      return output?.succeeded === undefined
        ? onlyGets(input.success) && onlyGets(input.failure)
        : onlyGets(output.succeeded ? input.success : input.failure);
  }
}

/** A key-value store over many keys, as HomeKV serves it. */
export const kvModel: SequentialModel<KvState, KvInput, KvOutput> = {
  init: () => new Map(),
  apply,
  step: stepByApply(apply, sameOutput),
  equal,
  hash,
  partition,
  readOnly,
  describeOperation,
  describeState,
};
