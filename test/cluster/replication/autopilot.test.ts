import { expect, test } from "bun:test";
import type { MemberStatus } from "../../../src/cluster/gossip/gossiper.ts";
import { DeadServers } from "../../../src/cluster/replication/autopilot.ts";

const view = (n3: MemberStatus) => [
  { nodeId: "n1", status: "alive" as const },
  { nodeId: "n3", status: n3 },
];

test("DeadServers: the worked example; the clock restarts when a server is seen otherwise than dead", () => {
  const dead = new DeadServers(5_000);
  expect(dead.observe(view("alive"), 0)).toEqual([]);
  expect(dead.observe(view("dead"), 2_000)).toEqual([]);
  expect(dead.observe(view("dead"), 6_999)).toEqual([]);
  expect(dead.observe(view("dead"), 9_000)).toEqual(["n3"]);
  expect(dead.observe(view("alive"), 10_000)).toEqual([]);
  // Dead again: counted from now, not from the first time.
  expect(dead.observe(view("dead"), 11_000)).toEqual([]);
  expect(dead.observe(view("suspect"), 15_000)).toEqual([]);
  expect(dead.observe(view("dead"), 16_000)).toEqual([]);
  expect(dead.observe(view("dead"), 21_000)).toEqual(["n3"]);
  // Left (a clean shutdown) is not dead; a server gossip forgot is not either.
  expect(dead.observe(view("left"), 30_000)).toEqual([]);
  expect(dead.observe([], 40_000)).toEqual([]);
});
