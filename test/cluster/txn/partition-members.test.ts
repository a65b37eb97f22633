import { expect, test } from "bun:test";
import { HomeKvError } from "../../../src/errors.ts";
import { waitFor } from "../../helpers/wait.ts";
import { names } from "../meta/meta-nodes.ts";
import { leaderOf, startPartitions } from "./partition-nodes.ts";

/**
 * What a partition's leader answers of its members is what a replica placed elsewhere retires on
 * (PartitionReplicas.collect): its removal must be committed, else the replica's log goes while
 * the group still counts it, and a leader lost then leaves the others without a quorum (or, placed
 * back, an empty replica votes where the old one acknowledged entries).
 */
/** One partition on three nodes, its leader's first entry committed. */
async function settledPartition() {
  const { nodes, groups } = await startPartitions(1);
  const leader = await leaderOf(groups, 0, nodes);
  await waitFor(
    () => {
      const { status } = leader.driver.groupStatus();
      return status.commit === status.lastIndex && leader.driver.leads;
    },
    { what: "the leader's first entry committed" },
  );
  return { nodes, leader, leaderNode: nodes.find((node) => groups.get(node)![0] === leader)! };
}

test("a leader's members leave out a replica only once its removal is committed", async () => {
  const { nodes, leader, leaderNode } = await settledPartition();
  const [removed] = nodes.filter((node) => node !== leaderNode);
  // The leader is cut off from both followers: the removal is appended at it and never committed.
  leaderNode.transport.partition(nodes.filter((node) => node !== leaderNode).map((node) => names.get(node.id)!));
  const removal = leader.driver.proposeConfChange({ type: "remove", node: removed!.id }).catch(() => {});
  expect(leader.driver.groupStatus().conf.voters).not.toContain(removed!.id);
  const { status } = leader.driver.groupStatus();
  expect(status.commit).toBeLessThan(status.lastIndex);
  const members = await Promise.resolve()
    .then(() => leader.members())
    .catch((error: unknown) => {
      expect(error).toBeInstanceOf(HomeKvError);
      return undefined;
    });
  // Either no answer (the leader cannot confirm it leads) or one that still counts the replica.
  if (members !== undefined) expect(members.voters).toContain(removed!.id);
  leaderNode.transport.heal();
  await removal;
}, 30_000);

test("a leader's members are those committed when it was asked, not a removal appended after", async () => {
  const { nodes, leader, leaderNode } = await settledPartition();
  const removed = nodes.find((node) => node !== leaderNode)!;
  // Asked, then the removal proposed before the answer: the answer is as of the asking.
  const asked = leader.members();
  const removal = leader.driver.proposeConfChange({ type: "remove", node: removed.id });
  expect(leader.driver.groupStatus().conf.voters).not.toContain(removed.id);
  expect((await asked).voters).toContain(removed.id);
  await removal;
  expect((await leader.members()).voters).not.toContain(removed.id);
}, 30_000);
