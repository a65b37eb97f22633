/** One write of a batch: a value to put, or `null` to delete the key. */
export interface WriteOp {
  readonly key: string;
  readonly value: Uint8Array | null;
}

/** A batch as the log carries it: committed whole at one revision. */
export interface LogEntry {
  readonly revision: number;
  readonly ops: readonly WriteOp[];
}

/** What applying a batch did. */
export interface ApplyResult {
  readonly revision: number;
  /** Keys that existed before the batch and were deleted by it. */
  readonly deleted: number;
}
