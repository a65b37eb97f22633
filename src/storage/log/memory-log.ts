import { HomeKvError, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import type { ApplyFn, CommitLog } from "./commit-log.ts";

/**
 * A log with nothing to wait for: each batch is committed at the next revision and applied at once.
 * It is the whole log layer of `serve --in-memory`, and the baseline the durable logs are tested against.
 */
export function createMemoryLog<R>(options: { lastRevision: number; apply: ApplyFn<R> }): CommitLog<R> {
  let revision = options.lastRevision;
  let closed = false;
  return {
    propose(command) {
      if (closed) return Promise.reject(new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE));
      try {
        return Promise.resolve(options.apply({ ...command, revision: ++revision }));
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
