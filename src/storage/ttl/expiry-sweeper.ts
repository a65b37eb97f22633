import { assert } from "../../errors.ts";
import type { Command } from "../ops.ts";
import { type ExpiryEntry, ExpiryQueue } from "./expiry-queue.ts";

/**
 * The I/O side of TTLs: the expiry queue (a pure heap) plus one timer set for its earliest deadline.
 * The store reports every put with a TTL through `onExpiry` (applied or restored); when the timer
 * fires, the due keys go through the log as `expire` commands of at most `batchMax` keys each, one
 * command in flight at a time, so that an expiry is committed like any write (WAL, watch streams,
 * replicas) and no timer turn does unbounded work. A failed proposal (the store is closing, the disk
 * failed) is reported and its keys are retried after `retryDelayMs`.
 *
 * Nothing is proposed before `start()`: a store restored from disk reports the TTLs it holds while
 * it recovers, and those already past their deadline expire as soon as the database can commit.
 */
export interface ExpirySweeper {
  /** To pass as `StoreOptions.onExpiry`. */
  onExpiry(key: string, revision: number, expiresAtMs: number): void;
  /** Begins expiring due keys (the database can propose from now on). */
  start(): void;
  /**
   * Forgets every key queued: the store they were reported from was replaced by another, which
   * reports its own TTLs as it is restored. A proposal in flight finishes (its command checks each
   * key against the store it applies to).
   */
  clear(): void;
  /** Cancels the timer; a proposal in flight finishes, nothing new starts. Idempotent. */
  stop(): void;
  /** Keys waiting to expire. */
  readonly pending: number;
}

export interface ExpiryTimers {
  /** Wall-clock Unix ms: the clock TTL deadlines are in. Default `Date.now`. */
  now?: () => number;
  /** Runs `fire` after `delayMs`; returns a handle for `clearTimer`. Default: an unref'd setTimeout. */
  setTimer?: (fire: () => void, delayMs: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface ExpirySweeperOptions extends ExpiryTimers {
  /** Commits a command through the log (`Database.propose`). */
  propose: (command: Command) => Promise<unknown>;
  /** Keys per expire command; default EXPIRY_BATCH_MAX. */
  batchMax?: number;
  /** Wait before retrying after a failed proposal; default EXPIRY_RETRY_DELAY_MS. */
  retryDelayMs?: number;
  /**
   * Whether the key's newest version is still the one written at `revision`: keys rewritten or
   * deleted since are left out of the command (the command checks again when it applies; this only
   * spares a command that would do nothing). Default: every key counts as current.
   */
  isCurrent?: (key: string, revision: number) => boolean;
  /** A failed proposal (retried later). */
  onError?: (error: unknown) => void;
}

export const EXPIRY_BATCH_MAX = 1_000;
export const EXPIRY_RETRY_DELAY_MS = 1_000;
/**
 * Longest the timer sleeps: deadlines are wall-clock times, so a clock that is set forward is
 * noticed within this, and setTimeout's own limit (2^31 - 1 ms, ~24.8 days) is never reached.
 */
export const EXPIRY_TIMER_DELAY_MS_MAX = 60_000;

export function createExpirySweeper(options: ExpirySweeperOptions): ExpirySweeper {
  const now = options.now ?? (() => Date.now());
  const setTimer =
    options.setTimer ??
    ((fire: () => void, delayMs: number) => {
      const timer = setTimeout(fire, delayMs);
      timer.unref();
      return timer;
    });
  const clearTimer = options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  const batchMax = options.batchMax ?? EXPIRY_BATCH_MAX;
  const retryDelayMs = options.retryDelayMs ?? EXPIRY_RETRY_DELAY_MS;
  const isCurrent = options.isCurrent ?? (() => true);
  const onError = options.onError ?? (() => {});
  assert(Number.isInteger(batchMax) && batchMax > 0, "expiry batch must hold at least one key");
  assert(retryDelayMs >= 0, "expiry retry delay must not be negative");

  const queue = new ExpiryQueue();
  let started = false;
  let stopped = false;
  let inFlight = false;
  /** When the timer is set: its deadline and handle. */
  let timer: { atMs: number; handle: unknown } | undefined;
  /** After a failure, nothing is proposed before this. */
  let retryAtMs = 0;

  const disarm = () => {
    if (timer === undefined) return;
    clearTimer(timer.handle);
    timer = undefined;
  };

  /** Sets the one timer for the earliest deadline (or keeps it, if it is set for that already). */
  const arm = () => {
    if (!started || stopped || inFlight) return;
    const deadline = queue.nextDeadline();
    if (deadline === undefined) return disarm();
    const currentMs = now();
    const atMs = Math.max(deadline, retryAtMs);
    const delayMs = Math.min(Math.max(0, atMs - currentMs), EXPIRY_TIMER_DELAY_MS_MAX);
    const fireAtMs = currentMs + delayMs;
    if (timer !== undefined && timer.atMs <= fireAtMs) return;
    disarm();
    timer = { atMs: fireAtMs, handle: setTimer(fire, delayMs) };
  };

  const fire = () => {
    timer = undefined;
    if (stopped || inFlight) return;
    const currentMs = now();
    if (currentMs < retryAtMs) return arm();
    const due = queue.popDue(currentMs, batchMax);
    const keys = due
      .filter((entry) => isCurrent(entry.key, entry.revision))
      .map(({ key, revision }) => ({ key, revision }));
    if (keys.length === 0) return arm(); // nothing live among these (or only stale entries): next batch or deadline
    inFlight = true;
    options.propose({ kind: "expire", keys }).then(
      () => {
        inFlight = false;
        arm();
      },
      (error: unknown) => {
        inFlight = false;
        if (stopped) return; // the database is closing: the keys expire after the next start
        requeue(due);
        retryAtMs = now() + retryDelayMs;
        onError(error);
        arm();
      },
    );
  };

  const requeue = (entries: readonly ExpiryEntry[]) => {
    for (const { expiresAtMs, key, revision } of entries) queue.add(expiresAtMs, key, revision);
  };

  return {
    onExpiry(key, revision, expiresAtMs) {
      if (stopped) return;
      queue.add(expiresAtMs, key, revision);
      arm();
    },
    start() {
      if (started) return;
      started = true;
      arm();
    },
    clear() {
      queue.clear();
      arm();
    },
    stop() {
      stopped = true;
      disarm();
    },
    get pending() {
      return queue.size;
    },
  };
}
