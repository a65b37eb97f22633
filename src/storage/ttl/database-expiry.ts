import { describeError, isHomeKvError } from "../../errors.ts";
import type { ReadView, StoreOptions } from "../mvcc/store.ts";
import type { Command } from "../ops.ts";
import { createExpirySweeper, type ExpirySweeperOptions } from "./expiry-sweeper.ts";

/** What a database's TTL sweeper may be given (tests inject a clock and timers). */
export type ExpirySettings = Omit<ExpirySweeperOptions, "propose" | "isCurrent">;

/**
 * The TTL sweeper as a database owns it. Made before the store (the store reports TTLs to it while
 * it is restored and replayed), started once the database can propose, stopped before its log closes:
 *
 *   const expiry = createDatabaseExpiry(options);
 *   const store = createMvccStore(expiry.storeOptions);   // … restore, replay …
 *   assembleDatabase({ store, log, expiry, … });           // start(propose, store) … stop()
 */
export interface DatabaseExpiry {
  /** The given store options with the sweeper's `onExpiry` composed in (after any given one). */
  readonly storeOptions: StoreOptions;
  start(propose: (command: Command) => Promise<unknown>, store: ReadView): void;
  stop(): void;
  /** Forgets the keys queued (the store was replaced; the new one reports its own as it is restored). */
  clear(): void;
  /** Keys waiting to expire. */
  readonly pending: number;
}

export function createDatabaseExpiry(
  options: StoreOptions & { expiry?: ExpirySettings },
  report: (line: string) => void = (line) => console.warn(line),
): DatabaseExpiry {
  let propose: ((command: Command) => Promise<unknown>) | undefined;
  let store: ReadView | undefined;
  const sweeper = createExpirySweeper({
    onError: (error) => {
      // In a cluster only the leader's sweeper proposes: a follower's (or a leader that just lost
      // its role) is refused, and retries, expiring the keys if it comes to lead.
      if (isHomeKvError(error, "E_NOT_LEADER")) return;
      report(`TTL expiry failed, retrying: ${describeError(error)}`);
    },
    ...options.expiry,
    propose: (command) => propose!(command),
    isCurrent: (key, revision) => {
      const [record] = store!.readRecords([key]);
      return record!.value !== undefined && record!.modRevision === revision;
    },
  });
  const given = options.onExpiry;
  return {
    storeOptions: {
      ...options,
      onExpiry: given
        ? (key, revision, expiresAtMs) => {
            given(key, revision, expiresAtMs);
            sweeper.onExpiry(key, revision, expiresAtMs);
          }
        : sweeper.onExpiry,
    },
    start(proposeCommand, startedStore) {
      propose = proposeCommand;
      store = startedStore;
      sweeper.start();
    },
    stop: () => sweeper.stop(),
    clear: () => sweeper.clear(),
    get pending() {
      return sweeper.pending;
    },
  };
}
