import type { Command, LogEntry } from "../ops.ts";

/**
 * The log layer (DESIGN.md): it orders batches, makes them durable (a local WAL on one node, a Raft
 * quorum in a cluster) and only then hands them, in log order, to the state machine. A command is
 * visible to readers only after `propose` has resolved with what the state machine returned.
 */
export interface CommitLog<R> {
  /**
   * `requestId` names a client's write so that a retry applies at most once: a log that carries it
   * (Raft) has the state machine skip a repeat; the others leave that to the database.
   */
  propose(command: Command, requestId?: string): Promise<R>;
  close(): Promise<void>;
}

/** The state machine side: applies one committed entry. Called in revision order, never concurrently. */
export type ApplyFn<R> = (entry: LogEntry) => R;
