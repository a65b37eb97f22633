import type { NodeId } from "../../../src/cluster/raft/types.ts";
import type { RaftDriver } from "../../../src/cluster/replication/raft-driver.ts";
import type { PartitionedMember } from "../../../src/node/partitioned-member.ts";
import type { SimNode } from "./sim-node.ts";

/** What clusterSettled reads of a simulation. */
export interface SettledView {
  readonly nodes: readonly SimNode[];
  /** The nodes of the cluster, by name. */
  readonly members: ReadonlySet<string>;
  readonly time: { readonly now: number };
}

const sortedIds = (ids: readonly NodeId[]) => [...ids].sort((a, b) => a - b).join(",");

/**
 * Why the cluster has not settled yet, or undefined once it has: every node of the cluster runs,
 * unpaused, and no other does; the meta group has one leader every node follows, its voters are
 * the cluster's nodes, every node applied all it committed, and its placement fits the nodes; and
 * every partition's group is at its placement — its replicas on the placed nodes and nowhere else,
 * its voters those (no learner), one leader they follow, all it committed applied on each.
 */
export function clusterSettled(view: SettledView): string | undefined {
  const running = new Map<string, PartitionedMember>();
  for (const node of view.nodes) {
    const member = node.process?.member;
    const wanted = view.members.has(node.name);
    if (wanted && member === undefined) return `${node.name} is not running`;
    if (!wanted && node.process !== undefined) return `${node.name}, no node of the cluster, still runs`;
    if (node.process !== undefined && node.process.pausedUntil > view.time.now) return `${node.name} is paused`;
    if (member) running.set(node.name, member);
  }
  const members = [...running.values()];
  const ids = (names: readonly string[]) => names.map((name) => running.get(name)?.selfId ?? -1);
  const meta = inOneGroup(
    "the meta group",
    members.map((member) => member.meta.driver),
    ids([...view.members]),
  );
  if (meta !== undefined) return meta;
  const leader = members.find((member) => member.meta.driver.leads)!;
  const { state } = leader.meta;
  if (sortedIds(ids([...state.nodes.keys()])) !== sortedIds(ids([...view.members])))
    return `the meta state's nodes are ${[...state.nodes.keys()]}, not ${[...view.members]}`;
  if (state.nextPlacement() !== undefined) return "the placement does not fit the nodes yet";
  if (members.some((member) => member.meta.state.placementVersion !== state.placementVersion))
    return "a node has not applied the newest placement";
  for (const [partition, placed] of state.placement.entries()) {
    const holders = [...running].filter(([, member]) => member.replicas.groups.has(partition)).map(([name]) => name);
    if (holders.sort().join() !== [...placed].sort().join())
      return `partition ${partition} is held by ${holders.join(" ") || "none"}, placed on ${placed.join(" ")}`;
    const group = inOneGroup(
      `partition ${partition}`,
      placed.map((name) => running.get(name)!.replicas.groups.get(partition)!.driver),
      ids(placed),
    );
    if (group !== undefined) return group;
  }
  return undefined;
}

/** What inOneGroup reads of a replica's driver. */
type GroupDriver = Pick<RaftDriver<unknown>, "leads" | "leader" | "appliedIndex" | "groupStatus">;

/** Why `drivers` are not one group led by one of them with exactly `voters`, all caught up (undefined: they are). */
function inOneGroup(what: string, drivers: readonly GroupDriver[], voters: readonly NodeId[]): string | undefined {
  const leaders = drivers.filter((driver) => driver.leads);
  if (leaders.length !== 1) return `${what} has ${leaders.length} leaders`;
  const leader = leaders[0]!;
  const { status, conf } = leader.groupStatus();
  if (conf.learners.length > 0 || sortedIds(conf.voters) !== sortedIds(voters))
    return `${what}'s voters are ${sortedIds(conf.voters)} (learners ${conf.learners}), not ${sortedIds(voters)}`;
  const behind = drivers.filter((driver) => driver.leader !== status.id || driver.appliedIndex !== status.commit);
  if (behind.length > 0) return `${what}: ${behind.length} replicas do not follow its leader or have not applied all`;
  return undefined;
}
