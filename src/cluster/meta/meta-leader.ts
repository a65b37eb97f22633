import { HomeKvError } from "../../errors.ts";
import type { Timers } from "../../timers.ts";
import type { NodeId } from "../raft/types.ts";
import type { MetaGroup } from "./meta-group.ts";

/** One call's wait for the leader's answer: a leader that died is asked no longer than this. */
const ATTEMPT_MS = 1_000;

/**
 * Runs a request at the meta group's leader, wherever it is: `local` when this node leads, else
 * `remote` with the name of the leader it knows and the time left for one attempt (a second at
 * most); again after a tick while the group has none, or the one asked no longer leads or does not
 * answer, until `deadline`. Anything but E_NOT_LEADER and E_UNAVAILABLE (bad input, a refusal, a
 * bug) is the caller's at once.
 */
export async function atMetaLeader<T>(
  meta: MetaGroup,
  nameOf: (id: NodeId) => string | undefined,
  timers: Timers,
  deadline: number,
  local: () => Promise<T>,
  remote: (leader: string, attemptMs: number) => Promise<T>,
): Promise<T> {
  for (;;) {
    const leader = meta.driver.leader;
    const name = leader === 0 ? undefined : nameOf(leader);
    try {
      if (meta.driver.leads) return await local();
      if (name !== undefined) return await remote(name, Math.max(1, Math.min(ATTEMPT_MS, deadline - timers.now())));
    } catch (error) {
      if (!(error instanceof HomeKvError && (error.code === "E_NOT_LEADER" || error.code === "E_UNAVAILABLE")))
        throw error;
    }
    if (timers.now() >= deadline) throw new HomeKvError("E_UNAVAILABLE", "no meta group leader answered in time");
    await meta.driver.nextTick();
  }
}
