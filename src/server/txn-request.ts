import { HomeKvError } from "../errors.ts";
import { Compare_Op, Compare_Target, type TxnRequest } from "../gen/homekv_service.ts";
import type { TxnCommand, TxnOp, WriteOp } from "../storage/ops.ts";
import { COMPARE_OPS, COMPARE_TARGETS } from "./convert.ts";
import { checkCount, checkKey, checkWrite, type Limits, ownBytes, quoteKey } from "./limits.ts";

/** Checks a Txn request and turns it into the command the log carries. */
export function checkTxn(request: TxnRequest, limits: Limits, nowMs: number): TxnCommand {
  checkCount(request.compares.length + request.success.length + request.failure.length, limits);
  const compares = request.compares.map((clause, i) => {
    const where = `compares[${i}]`;
    within(where, () => checkKey(clause.key, limits));
    if (!(clause.target in COMPARE_TARGETS) || clause.target === Compare_Target.UNRECOGNIZED) {
      throw new HomeKvError("E_INVALID", `${where}.target ${clause.target} is not a compare target`);
    }
    if (!(clause.op in COMPARE_OPS) || clause.op === Compare_Op.UNRECOGNIZED) {
      throw new HomeKvError("E_INVALID", `${where}.op ${clause.op} is not a compare operator`);
    }
    const target = COMPARE_TARGETS[clause.target];
    const op = COMPARE_OPS[clause.op];
    if (target === "exists" && (clause.number > 1 || (op !== "==" && op !== "!="))) {
      throw new HomeKvError("E_INVALID", `${where}: EXISTS compares number 1 or 0 with EQUAL or NOT_EQUAL`);
    }
    return target === "value"
      ? { key: clause.key, target, op, value: ownBytes(clause.value) }
      : { key: clause.key, target, op, number: clause.number };
  });
  return {
    compares,
    success: checkOps(request.success, "success", limits, nowMs),
    failure: checkOps(request.failure, "failure", limits, nowMs),
  };
}

/** Whether a transaction writes anything (else it is answered from a snapshot, without a commit). */
function checkOps(ops: TxnRequest["success"], branch: string, limits: Limits, nowMs: number): TxnOp[] {
  const written = new Set<string>();
  return ops.map((entry, i) => {
    const op = entry.op;
    const where = `${branch}[${i}]`;
    if (op === undefined) throw new HomeKvError("E_INVALID", `${where} has no operation (get, put or delete)`);
    if (op.$case === "get") {
      within(where, () => checkKey(op.get, limits));
      return { get: op.get };
    }
    const write = within(where, () =>
      op.$case === "put" ? checkWrite(op.put, limits, nowMs) : checkedDelete(op.delete, limits),
    );
    if (written.has(write.key))
      throw new HomeKvError("E_INVALID", `${branch} writes key ${quoteKey(write.key)} more than once`);
    written.add(write.key);
    return write;
  });
}

/** Runs the check of one part of the request: a refusal names the part (`success[2]: …`). */
function within<T>(where: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    throw error instanceof HomeKvError ? new HomeKvError(error.code, `${where}: ${error.message}`) : error;
  }
}

function checkedDelete(key: string, limits: Limits): WriteOp {
  checkKey(key, limits);
  return { key, value: null };
}
