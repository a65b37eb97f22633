import { HomeKvError } from "../../errors.ts";

/**
 * Checks `condition` every `intervalMs` until it holds or `timeoutMs` has passed (then
 * E_UNAVAILABLE, saying what was awaited): for a state the Raft group reaches by itself (an entry
 * applied, a new leader), which no event here announces.
 */
export async function pollUntil(
  condition: () => boolean,
  options: { what: string; timeoutMs: number; intervalMs: number },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  const checksMax = Math.ceil(options.timeoutMs / options.intervalMs) + 1;
  for (let check = 0; check < checksMax && performance.now() < deadline; check++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
  if (condition()) return;
  throw new HomeKvError("E_UNAVAILABLE", `${options.what} did not happen within ${options.timeoutMs} ms`);
}
