import { HomeKvError, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import type { ApplyFn, CommitLog } from "./commit-log.ts";

/**
 * A log with nothing to wait for: each batch is committed at the next revision and applied at once.
 * It is the whole log layer of `serve --in-memory`, and the baseline the durable logs are tested against.
 * `nextRevision` stamps a command after the one at `last` instead (above it; gaps allowed): a store
 * fed revisions as a partition's timestamps will be.
 */
export function createMemoryLog<R>(options: {
  lastRevision: number;
  apply: ApplyFn<R>;
  nextRevision?: (last: number) => number;
}): CommitLog<R> {
  const next = options.nextRevision ?? ((last: number) => last + 1);
  let revision = options.lastRevision;
  let closed = false;
  return {
    propose(command) {
      if (closed) return Promise.reject(new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE));
      try {
        const entry = { ...command, revision: next(revision) };
        const result = options.apply(entry);
        revision = entry.revision;
        return Promise.resolve(result);
      } catch (error) {
        return Promise.reject(error);
      }
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
