#!/usr/bin/env bun
/**
 * One node of scripts/bench-idle-hosts.ts: a process running G Raft groups of three nodes in one
 * RaftHost, over a real peer transport on loopback, their Raft logs in one RaftLogEngine in `--dir`.
 * Each group commits one entry; the process prints "settled" once every group here knows its
 * leader and (with quiescence) every group is quiet, then idles until stopped (or 300 s pass),
 * printing "awake N" (its groups not quiet) every second.
 *
 *   bun scripts/bench/idle-host.ts --id 1 --ports 4001,4002,4003 --groups 256 --quiesce on --dir D
 */
import { RaftLogEngine } from "../../src/cluster/raft/group-log-engine.ts";
import { realFileSystem } from "../../src/io/fs/real-fs.ts";
import { startHostedNode } from "../../test/cluster/replication/hosted-node.ts";
import { flag } from "./args.ts";

const id = Number(flag("--id", "1"));
const ports = flag("--ports", "").split(",").map(Number);
const groups = Number(flag("--groups", "256"));
const quiesce = flag("--quiesce", "on") === "on";
const tickMs = Number(flag("--tick-ms", "100"));
const dir = flag("--dir", "");
const committed = new Set<number>();
const engine = await RaftLogEngine.open(realFileSystem, `${dir}/n${id}`);
const { host, transport } = await startHostedNode({
  id,
  ports,
  groups,
  quiesce,
  tickMs,
  openLog: (group) => engine.group(group),
  random: () => Math.random,
  onApply: (group) => committed.add(group),
});

const payload = new TextEncoder().encode("x");
const poll = setInterval(() => {
  for (const group of host.groups) {
    const driver = host.driver(group)!;
    if (driver.leads && !committed.has(group)) driver.propose(payload).catch(() => {});
  }
  const stats = host.stats();
  const ready = committed.size === groups && (!quiesce || stats.awake === 0);
  if (ready) {
    // From here on only the host runs (and a line a second): what is measured.
    clearInterval(poll);
    console.log(`settled ${JSON.stringify(stats)}`);
    report = setInterval(() => console.log(`awake ${host.stats().awake}`), 1_000);
  }
}, 100);
let report: ReturnType<typeof setInterval> | undefined;
const stop = setTimeout(() => process.exit(0), 300_000);
process.on("SIGTERM", () => {
  clearInterval(poll);
  clearInterval(report);
  clearTimeout(stop);
  host.stop();
  transport.close();
  process.exit(0);
});
