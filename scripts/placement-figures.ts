#!/usr/bin/env bun
/**
 * How even partition placement is, and how much a join or a leave moves (src/cluster/ring/placement.ts):
 * for each node count N, the cluster grows from N - 1 nodes by one join, then loses one of its
 * first nodes. Printed as a markdown table: replicas per node (least, most, and their distance from
 * the mean), leaders per node, and the replicas moved as a fraction of all of them, divided by the
 * ideal 1/N (1.00 is the least any placement can move).
 *
 *   bun scripts/placement-figures.ts [--partitions 64] [--replicas 3] [--nodes 12]
 */
import { movedReplicas, type Placement, place, shares } from "../src/cluster/ring/placement.ts";
import { flag } from "./bench/args.ts";

const partitions = Number(flag("--partitions", "64"));
const replicas = Number(flag("--replicas", "3"));
const nodesMax = Number(flag("--nodes", "12"));
const shape = { partitions, replicas };

function spread(placement: Placement, nodes: readonly string[]) {
  const counts = [...shares(placement, nodes).values()];
  const held = counts.map((count) => count.replicas);
  const led = counts.map((count) => count.leaders);
  const mean = (partitions * Math.min(replicas, nodes.length)) / nodes.length;
  const off = Math.max(...held.map((count) => Math.abs(count - mean))) / mean;
  return `${Math.min(...held)}–${Math.max(...held)} (±${(off * 100).toFixed(1)}%) | ${Math.min(...led)}–${Math.max(...led)}`;
}

console.log(`# Placement of ${partitions} partitions × ${replicas} replicas\n`);
console.log("| nodes | replicas per node | leaders per node | moved by the join ÷ 1/N | moved by a leave ÷ 1/N |");
console.log("| ---: | --- | --- | ---: | ---: |");
let nodes = Array.from({ length: Math.max(1, replicas) }, (_, index) => `n${index + 1}`);
let placement = place(undefined, nodes, shape);
for (let count = nodes.length + 1; count <= nodesMax; count += 1) {
  const joined = [...nodes, `n${count}`];
  const next = place(placement, joined, shape);
  const total = partitions * Math.min(replicas, count);
  const ratio = (moved: number) => ((moved / total) * count).toFixed(2);
  const left = joined.filter((node) => node !== "n2");
  const leave = movedReplicas(next, place(next, left, shape));
  console.log(`| ${count} | ${spread(next, joined)} | ${ratio(movedReplicas(placement, next))} | ${ratio(leave)} |`);
  nodes = joined;
  placement = next;
}
