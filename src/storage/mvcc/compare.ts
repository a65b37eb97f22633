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
      order = (record.value === undefined ? 0 : 1) - compareNumber(clause);
      break;
    case "mod_revision":
      order = record.modRevision - compareNumber(clause);
      break;
    case "create_revision":
      order = record.createRevision - compareNumber(clause);
      break;
    case "version":
      order = record.version - compareNumber(clause);
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

/**
 * The number a clause compares with, its default filled in: `exists` alone means "exists" (1). The
 * command format writes this too, so a clause reads the same from a log entry as from the object
 * it was encoded from (a Raft leader applies the object it proposed, every other member the entry).
 */
export function compareNumber(clause: Compare): number {
  return clause.number ?? (clause.target === "exists" ? 1 : 0);
}
