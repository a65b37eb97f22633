/**
 * What `promise` rejected with, awaited as any promise is. The tests use this, never bun:test's
 * `rejects` or `resolves` matchers: Bun 1.4 waits for the promise given to those in a turn of the
 * event loop nested inside the current one, where the setImmediate callbacks queued in the same
 * batch as the one the test resumed from cannot run. A promise that only they can settle — a Raft
 * driver's loop, the peer link's flush, a log engine's write are all started that way — then
 * settles when its own timeout fires, and the test sees that error instead of the one it checks
 * (a partitioned database's read failed with "no timestamps within 5000 ms: no meta leader
 * answered", its meta group's followers stalled behind the matcher).
 */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (reason) {
    return reason;
  }
  throw new Error(`expected a rejection, but the promise resolved with ${Bun.inspect(value)}`);
}

/** The message of the Error `promise` rejected with (to match as bun's toThrow would). */
export async function rejectionMessage(promise: Promise<unknown>): Promise<string> {
  const reason = await rejection(promise);
  if (!(reason instanceof Error))
    throw new Error(`expected an Error, but the promise rejected with ${Bun.inspect(reason)}`);
  return reason.message;
}
