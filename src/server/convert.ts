import { Compare_Op, Compare_Target, type Record as ProtoRecord } from "../gen/homekv_service.ts";
import type { CompareOp, CompareTarget, KeyRecord } from "../storage/ops.ts";

/** Between the wire's messages and the store's types. */

export function toProtoRecord(
  record: KeyRecord,
  options: { nowMs: number; withTtl: boolean; keysOnly?: boolean },
): ProtoRecord {
  return {
    key: record.key,
    value: options.keysOnly ? undefined : record.value,
    modRevision: record.modRevision,
    createRevision: record.createRevision,
    version: record.version,
    ttlMs:
      options.withTtl && record.expiresAtMs !== undefined
        ? Math.max(1, Math.ceil(record.expiresAtMs - options.nowMs))
        : 0,
  };
}

export const COMPARE_TARGETS: Readonly<Record<Compare_Target, CompareTarget>> = {
  [Compare_Target.VALUE]: "value",
  [Compare_Target.MOD_REVISION]: "mod_revision",
  [Compare_Target.CREATE_REVISION]: "create_revision",
  [Compare_Target.VERSION]: "version",
  [Compare_Target.EXISTS]: "exists",
  [Compare_Target.UNRECOGNIZED]: "value", // refused by checkTxn before it is looked up
};

export const COMPARE_OPS: Readonly<Record<Compare_Op, CompareOp>> = {
  [Compare_Op.EQUAL]: "==",
  [Compare_Op.NOT_EQUAL]: "!=",
  [Compare_Op.LESS]: "<",
  [Compare_Op.GREATER]: ">",
  [Compare_Op.UNRECOGNIZED]: "==", // refused by checkTxn before it is looked up
};
