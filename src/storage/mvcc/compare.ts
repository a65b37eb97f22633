import type { Compare, KeyRecord } from "../ops.ts";

/** Whether a transaction clause holds for a key's record (a missing key has zeros and no value). */
export function compareHolds(clause: Compare, record: KeyRecord): boolean {
  let order: number;
  switch (clause.target) {
    case "value": {
      if (record.value === undefined) return clause.op === "!="; // a missing key has no value to match
      order = Buffer.compare(record.value, clause.value ?? new Uint8Array(0));
      break;
    }
    case "exists":
      order = (record.value === undefined ? 0 : 1) - (clause.number ?? 1);
      break;
    case "mod_revision":
      order = record.modRevision - (clause.number ?? 0);
      break;
    case "create_revision":
      order = record.createRevision - (clause.number ?? 0);
      break;
    case "version":
      order = record.version - (clause.number ?? 0);
      break;
  }
  switch (clause.op) {
    case "==":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case ">":
      return order > 0;
  }
}
