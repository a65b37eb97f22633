import { afterEach, expect, test } from "bun:test";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import type { NodeId } from "../../../src/cluster/raft/types.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type HostedNode, startHostedNode } from "./hosted-node.ts";

const TICK_MS = 10;
const IDS: readonly NodeId[] = [1, 2, 3];

interface Node extends HostedNode {
  /** Per group: the entries' data applied here, in order. */
  applied: Map<number, string[]>;
}

const running: Node[] = [];
afterEach(() => {
  for (const node of running.splice(0)) {
    node.host.stop();
    node.transport.close();
  }
});

/** Three hosts, each running `groups` Raft groups of the three nodes, recording the data they apply. */
async function startHosts(groups: number, quiesce: boolean): Promise<Node[]> {
  const ports = freePorts(IDS.length);
  const nodes: Node[] = [];
  for (const id of IDS) {
    // Every group's log in one engine per node: one fsync for the writes of all its groups.
    const engine = await RaftLogEngine.open(new MemoryFileSystem(), "/raft");
    const applied = new Map(Array.from({ length: groups }, (_, i) => [i + 1, [] as string[]]));
    const hosted = await startHostedNode({
      id,
      ports,
      groups,
      quiesce,
      tickMs: TICK_MS,
      openLog: (group) => engine.group(group),
      random: (group) => mulberry32(id * 1_000 + group),
      onApply: (group, data) => applied.get(group)!.push(new TextDecoder().decode(data)),
    });
    const node = { ...hosted, applied };
    nodes.push(node);
    running.push(node);
  }
  return nodes;
}

/** The node every live node of `group` follows, once they agree. */
function leaderOf(nodes: readonly Node[], group: number): Promise<Node> {
  return waitFor(
    () => {
      const leaders = new Set(nodes.map((node) => node.host.driver(group)!.leader));
      const [leader] = leaders;
      return leaders.size === 1 ? nodes.find((node) => node.id === leader) : undefined;
    },
    {
      what: `one leader of group ${group} followed by ${nodes.map((n) => n.id).join(", ")}`,
      timeoutMs: 10_000,
    },
  );
}

async function writeEverywhere(nodes: readonly Node[], groups: number, value: string): Promise<void> {
  const data = new TextEncoder().encode(value);
  await Promise.all(
    Array.from({ length: groups }, async (_, i) => {
      const leader = await leaderOf(nodes, i + 1);
      await leader.host.driver(i + 1)!.propose(data);
    }),
  );
  await waitFor(() => nodes.every((node) => [...node.applied.values()].every((log) => log.at(-1) === value)), {
    what: `every group on every node to apply "${value}"`,
  });
}

/** `count` ticks of a host (its groups' tick waiters are released by the host's timer). */
async function ticks(node: Node, group: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await node.host.driver(group)!.nextTick();
}

test("many groups on three hosts elect, commit and apply; a tick's heartbeats to a peer leave as one payload", async () => {
  const GROUPS = 24;
  const nodes = await startHosts(GROUPS, false);
  await writeEverywhere(nodes, GROUPS, "one");
  const leadersOn = (node: Node) => node.host.groups.filter((g) => node.host.driver(g)!.leads).length;
  const before = nodes.map((node) => node.host.stats());
  await ticks(nodes[0]!, 1, 20);
  const after = nodes.map((node) => node.host.stats());
  for (const [i, node] of nodes.entries()) {
    const payloads = after[i]!.payloadsSent - before[i]!.payloadsSent;
    const messages = after[i]!.messagesSent - before[i]!.messagesSent;
    // Awake groups heartbeat every tick: a node leading L groups sends 2·L heartbeats and answers the
    // others' — all of a tick's to one peer in one payload, so about 2 payloads a tick, not 2·G.
    console.log(`n${node.id} leads ${leadersOn(node)}: ${payloads / 20} payloads, ${messages / 20} messages a tick`);
    // Without coalescing it would be one per group and peer: some 2 · 24 a tick.
    expect(payloads / 20).toBeLessThanOrEqual(6);
    expect(messages / payloads).toBeGreaterThan(GROUPS / 4);
  }
});

test("idle groups go quiet and send nothing; a write wakes its group only; a lost leader's groups elect again", async () => {
  const GROUPS = 16;
  const nodes = await startHosts(GROUPS, true);
  await writeEverywhere(nodes, GROUPS, "one");
  await waitFor(() => nodes.every((node) => node.host.stats().awake === 0), {
    what: "every group quiet on every host",
    detail: () => nodes.map((node) => `n${node.id}: ${node.host.stats().awake} awake`).join(", "),
  });
  const sent = () => nodes.map((node) => node.host.stats().messagesSent);
  const quiet = sent();
  await ticks(nodes[0]!, 1, 20);
  expect(sent()).toEqual(quiet);

  // One write wakes its group (on every node), and the group goes quiet again.
  const leader = await leaderOf(nodes, 5);
  await leader.host.driver(5)!.propose(new TextEncoder().encode("two"));
  expect(nodes.every((node) => node.host.stats().awake <= 1)).toBe(true);
  await waitFor(() => nodes.every((node) => node.applied.get(5)!.at(-1) === "two" && node.host.stats().awake === 0), {
    what: "group 5 to apply the write everywhere and go quiet again",
  });

  // The node leading the most groups dies (its transport closes): their quiet followers learn it
  // from the closed connections, elect among themselves, and take writes.
  const leads = (node: Node) => node.host.groups.filter((g) => node.host.driver(g)!.leads);
  const victim = nodes.reduce((a, b) => (leads(b).length > leads(a).length ? b : a));
  const orphaned = leads(victim);
  expect(orphaned.length).toBeGreaterThan(0);
  victim.host.stop();
  victim.transport.close();
  const survivors = nodes.filter((node) => node !== victim);
  await Promise.all(orphaned.map((group) => leaderOf(survivors, group)));
  await writeEverywhere(survivors, GROUPS, "three");
});

test("a group removed from a host stops taking its messages; the others go on", async () => {
  const nodes = await startHosts(2, false);
  await writeEverywhere(nodes, 2, "one");
  const node = nodes[2]!;
  node.host.remove(2);
  expect(node.host.groups).toEqual([1]);
  await waitFor(() => node.host.stats().misrouted > 0, { what: "messages for the removed group to be dropped" });
  await writeEverywhere(nodes.slice(0, 2), 2, "two");
  await waitFor(() => node.applied.get(1)!.at(-1) === "two", { what: "group 1 to apply on the third node" });
  expect(node.applied.get(2)!.at(-1)).toBe("one");
});
