import { HomeKvError } from "../../errors.ts";
import type { ClusterStatusResponse } from "../../gen/homekv_service.ts";
import type { ClusterControl } from "../../server/cluster-control.ts";
import type { MemberStatus } from "../gossip/gossiper.ts";
import { DeadServers } from "./autopilot.ts";
import {
  CHANGE_METHOD,
  type ChangeRequest,
  decodeChangeAnswer,
  decodeChangeRequest,
  decodeStatusRequest,
  encodeChangeAnswer,
  encodeChangeRequest,
  encodeMemberStatus,
  MEMBER_STATUS_METHOD,
} from "./cluster-rpc-format.ts";
import { clusterStatus, ownStatus } from "./cluster-status.ts";
import { type GroupView, nameOf } from "./group-view.ts";
import { MembershipChanges, type MembershipOptions } from "./membership-changes.ts";
import { pollUntil } from "./poll.ts";

/** Autopilot's removal of dead voters: gossip's view (undefined while gossip is not up) and the grace. */
export interface Autopilot {
  gossip(): readonly { nodeId: string; status: MemberStatus }[] | undefined;
  deadServerAfterMs: number;
}

/** How long a status round waits for each member's answer. */
const STATUS_TIMEOUT_MS = 1_000;
/** How long this member waits, after the leader made a change, to have applied it too. */
const APPLY_WAIT_MS = 5_000;
/** Autopilot's promotion looks at the learners this often, in ticks. */
const PROMOTE_EVERY_TICKS = 2;

/**
 * The cluster RPCs of a replicated member: status from what its group knows and what the others
 * say of themselves; changes made by the leader, forwarded to it over peer RPC from any other
 * member. Also serves the others' peer RPCs (their status questions and forwarded changes), and
 * runs autopilot: promotion of caught-up learners, and with `autopilot`, removal of voters gossip
 * has seen dead too long. `stop` ends the timer.
 */
export function replicatedClusterControl(
  view: GroupView,
  options: MembershipOptions & { autopilot?: Autopilot },
): ClusterControl & { stop(): void } {
  const changes = new MembershipChanges(view, options);
  view.rpc.handle(MEMBER_STATUS_METHOD, async (_from, request) => {
    decodeStatusRequest(request);
    return encodeMemberStatus(ownStatus(view));
  });
  view.rpc.handle(CHANGE_METHOD, async (_from, request) =>
    encodeChangeAnswer(await changes.execute(decodeChangeRequest(request))),
  );
  const { autopilot } = options;
  const dead = autopilot && new DeadServers(autopilot.deadServerAfterMs);
  const promotion = setInterval(() => {
    changes.promoteCaughtUpLearner().catch((error) => view.log.warn(`promoting a learner failed: ${error}`));
    const gossip = autopilot?.gossip();
    if (dead && gossip)
      changes
        .removeDeadVoter(dead.observe(gossip, performance.now()))
        .catch((error) => view.log.warn(`autopilot failed to remove a dead voter: ${error}`));
  }, PROMOTE_EVERY_TICKS * view.tickMs);

  const status = () => clusterStatus(view, STATUS_TIMEOUT_MS);
  /** Makes the change on the leader (here, or over peer RPC), then answers with the members after it. */
  const change = async (request: ChangeRequest): Promise<ClusterStatusResponse> => {
    const index = view.driver.leads ? await changes.execute(request) : await forward(request);
    await pollUntil(() => view.driver.groupStatus().status.applied >= index, {
      what: `applying the change (index ${index}) on ${view.self}`,
      timeoutMs: APPLY_WAIT_MS,
      intervalMs: view.tickMs,
    });
    return status();
  };
  const forward = async (request: ChangeRequest): Promise<number> => {
    const { leader } = view.driver.groupStatus().status;
    if (leader === 0 || leader === view.selfId)
      throw new HomeKvError("E_UNAVAILABLE", "the group has no leader right now (an election is under way): try again");
    // The leader may wait out a leadership transfer: give it that long and a bit.
    const timeoutMs = options.transferTimeoutMs + STATUS_TIMEOUT_MS + APPLY_WAIT_MS;
    return decodeChangeAnswer(
      await view.rpc.call(nameOf(view, leader), CHANGE_METHOD, encodeChangeRequest(request), timeoutMs),
    );
  };
  return {
    status,
    add: (name, peerAddress) => change({ op: "add", name, peerAddress }),
    remove: (name) => change({ op: "remove", name }),
    transferLeader: (name) => change({ op: "transfer", name }),
    stop: () => clearInterval(promotion),
  };
}
