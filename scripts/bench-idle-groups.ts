#!/usr/bin/env bun
/**
 * What idle Raft groups cost, in the core alone: G groups of 3 nodes in this process, each with a
 * leader and nothing to do, ticked as `homekv serve` ticks them (every --raft-tick, default 100 ms),
 * their messages encoded and decoded by the peer codec and delivered. Printed: the CPU one node
 * spends per second on its G groups, as a share of one core, with and without quiescence. The
 * transport's own cost (a socket write per peer per turn) comes on top in a real process, and
 * quiescence removes that too, since an idle group sends nothing.
 *
 *   bun scripts/bench-idle-groups.ts [--groups 256] [--ticks 300] [--tick-ms 100]
 */
import { decodeMessages, encodeMessages } from "../src/cluster/raft/message-codec.ts";
import type { Message } from "../src/cluster/raft/types.ts";
import { ManualCluster } from "../test/cluster/raft/manual-cluster.ts";
import { flag } from "./bench/args.ts";

const groups = Number(flag("--groups", "256"));
const ticks = Number(flag("--ticks", "300"));
const tickMs = Number(flag("--tick-ms", "100"));
const NODES = 3;

/** One tick of every node of every group, then every message through the codec to its receiver, until none is left. */
function tickAll(clusters: readonly ManualCluster[]): number {
  let sent = 0;
  for (const [index, cluster] of clusters.entries()) {
    for (const id of cluster.ids) cluster.tick(id);
    for (let round = 0; round < 10; round++) {
      cluster.flush();
      if (cluster.queue.length === 0) break;
      const batch: Message[] = cluster.queue;
      cluster.queue = [];
      sent += batch.length;
      const decoded = decodeMessages(encodeMessages(batch.map((message) => ({ group: index + 1, message }))));
      for (const { message } of decoded) cluster.raft(message.to).step(message);
    }
  }
  return sent;
}

console.log(`# ${groups} idle Raft groups × ${NODES} nodes, ticked every ${tickMs} ms (${ticks} ticks measured)\n`);
console.log("| quiescence | messages per tick | CPU per node, share of one core |");
console.log("| --- | ---: | ---: |");
for (const quiesce of [false, true]) {
  const clusters = Array.from({ length: groups }, () => {
    const cluster = new ManualCluster(NODES, { quiesce });
    cluster.elect(1);
    return cluster;
  });
  // Warm up: the JIT, and (with quiescence) the round of heartbeats before the groups go quiet.
  for (let i = 0; i < 50; i++) tickAll(clusters);
  const before = process.cpuUsage();
  let sent = 0;
  for (let i = 0; i < ticks; i++) sent += tickAll(clusters);
  const used = process.cpuUsage(before);
  const cpuMicrosPerTick = (used.user + used.system) / ticks;
  // All nodes of all groups run in this one process: a node's share is a third of it.
  const share = cpuMicrosPerTick / NODES / (tickMs * 1_000);
  console.log(`| ${quiesce ? "on" : "off"} | ${Math.round(sent / ticks)} | ${(share * 100).toFixed(2)}% |`);
}
