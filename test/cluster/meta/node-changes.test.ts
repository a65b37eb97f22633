import { expect, test } from "bun:test";
import { changeNodes, serveNodeChanges } from "../../../src/cluster/meta/node-changes.ts";
import { inOffice, names, startMetaGroup } from "./meta-nodes.ts";

/**
 * Node changes (`homekv cluster add/remove` on a partitioned cluster, and a gossip joiner's asks)
 * proposed from any node at the meta group's leader, over peer RPC from a follower: a node put
 * again at its address is there already, at another address refused; a removed node's name is put
 * again only once no group still counts a node of that name (what the leader is told by
 * `stillCounted`, in a server the partitions' leaders asked); a refusal names its reason.
 */
test("a node is put or removed from any node; a removed name is refused while a group still counts it", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  const follower = nodes.find((node) => node !== leader)!;
  const counting = new Set<string>();
  const asked: string[] = [];
  const stillCounted = async (name: string) => {
    asked.push(name);
    return counting.has(name) ? "partition 3's group" : undefined;
  };
  for (const node of nodes) serveNodeChanges(node.rpc, node.meta, stillCounted);
  const change = (command: Parameters<typeof changeNodes>[3]) =>
    changeNodes(follower.meta, follower.rpc, (id) => names.get(id), command, 5_000, stillCounted);
  const put = (name: string, port: number) =>
    change({ type: "putNode", node: { name, peerAddress: `127.0.0.1:${port}` } });

  expect(await put("other", 9)).toEqual({ ok: true });
  expect(await put("fresh", 1)).toEqual({ ok: true });
  expect(leader.meta.state.nodes.get("fresh")?.peerAddress).toBe("127.0.0.1:1");
  // A name never removed is not looked for in the groups.
  expect(asked).toEqual([]);
  // Put again: at its address, nothing to do; at another, refused (a second server of that name).
  const entries = leader.meta.driver.groupStatus().status.lastIndex;
  expect(await put("fresh", 1)).toEqual({ ok: true });
  expect(leader.meta.driver.groupStatus().status.lastIndex).toBe(entries);
  expect(await put("fresh", 3)).toEqual({
    ok: false,
    reason: "fresh is a node already, at 127.0.0.1:1: remove it first to give it another address",
  });
  // Removed, and still counted by a group: refused until the groups let it go.
  expect(await change({ type: "removeNode", name: "fresh" })).toEqual({ ok: true });
  expect(leader.meta.state.removed.has("fresh")).toBe(true);
  counting.add("fresh");
  expect(await put("fresh", 3)).toEqual({
    ok: false,
    reason:
      "fresh was removed, and partition 3's group still counts it (its replicas are moving away): add it again once the moves are done",
  });
  expect(leader.meta.state.nodes.has("fresh")).toBe(false);
  counting.delete("fresh");
  expect(await put("fresh", 3)).toEqual({ ok: true });
  expect(leader.meta.state.removed.has("fresh")).toBe(false);
}, 30_000);
