import { expect, test } from "bun:test";
import { changeNodes, serveNodeChanges } from "../../../src/cluster/meta/node-changes.ts";
import { inOffice, names, startMetaGroup } from "./meta-nodes.ts";

/**
 * Node changes (`homekv cluster add/remove` on a partitioned cluster) proposed from any node at the
 * meta group's leader, over peer RPC from a follower: a name that is not the cluster's is put only
 * once no group still counts a node of that name (what the leader is told by `stillCounted`, in a
 * server the partitions' leaders asked); a name that is one of the cluster's may be put again (a
 * new address), and a refusal names its reason.
 */
test("a node is put or removed from any node; a removed name is refused while a group still counts it", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  const follower = nodes.find((node) => node !== leader)!;
  const counting = new Set(["gone"]);
  const stillCounted = async (name: string) => (counting.has(name) ? "partition 3's group" : undefined);
  for (const node of nodes) serveNodeChanges(node.rpc, node.meta, stillCounted);
  const change = (command: Parameters<typeof changeNodes>[3]) =>
    changeNodes(follower.meta, follower.rpc, (id) => names.get(id), command, 5_000, stillCounted);

  expect(await change({ type: "putNode", node: { name: "other", peerAddress: "127.0.0.1:9" } })).toEqual({ ok: true });
  expect(await change({ type: "putNode", node: { name: "fresh", peerAddress: "127.0.0.1:1" } })).toEqual({ ok: true });
  expect(leader.meta.state.nodes.get("fresh")?.peerAddress).toBe("127.0.0.1:1");
  expect(await change({ type: "putNode", node: { name: "gone", peerAddress: "127.0.0.1:2" } })).toEqual({
    ok: false,
    reason:
      "gone was removed, and partition 3's group still counts it (its replicas are moving away): add it again once the moves are done",
  });
  expect(leader.meta.state.nodes.has("gone")).toBe(false);
  // A node of the cluster is put again (another address) whatever the groups say of its name.
  counting.add("fresh");
  expect(await change({ type: "putNode", node: { name: "fresh", peerAddress: "127.0.0.1:3" } })).toEqual({ ok: true });
  expect(leader.meta.state.nodes.get("fresh")?.peerAddress).toBe("127.0.0.1:3");
  expect(await change({ type: "removeNode", name: "fresh" })).toEqual({ ok: true });
  expect(leader.meta.state.nodes.has("fresh")).toBe(false);
  // Removed, and still counted: refused until the groups let it go.
  expect((await change({ type: "putNode", node: { name: "fresh", peerAddress: "127.0.0.1:3" } })).ok).toBe(false);
  counting.delete("fresh");
  expect(await change({ type: "putNode", node: { name: "fresh", peerAddress: "127.0.0.1:3" } })).toEqual({ ok: true });
}, 30_000);
