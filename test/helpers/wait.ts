export interface WaitOptions {
  /** What is awaited, as the error should name it: "the server to list 2 watchers". */
  what: string;
  /** How long to wait at most. */
  timeoutMs?: number;
  /** How long to pause between two checks. */
  intervalMs?: number;
  /** What to add to the error when time runs out: the last state seen, a process's output. */
  detail?: () => string | Promise<string>;
}

/**
 * Checks `condition` until it holds and returns what it returned (a value, or true). The one
 * place in the tests that pauses: between two checks of a condition, never instead of one. Times
 * out with an error naming what was awaited and, from `detail`, what was seen; an error the
 * condition throws ends the wait at once.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { what, timeoutMs = 10_000, intervalMs = 10, detail }: WaitOptions,
): Promise<Exclude<T, false | null | undefined | 0 | "">> {
  const started = performance.now();
  const checksMax = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 1;
  for (let check = 0; check < checksMax; check++) {
    const value = await condition();
    if (value) return value as Exclude<T, false | null | undefined | 0 | "">;
    if (performance.now() - started >= timeoutMs) break;
    await Bun.sleep(intervalMs);
  }
  const seen = detail ? `\n${await detail()}` : "";
  throw new Error(`timed out after ${Math.round(performance.now() - started)} ms waiting for ${what}${seen}`);
}
