import { expect, test } from "bun:test";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the cluster comparison: it must install what it lacks, start both 3-member
 * clusters, print the throughput, memory and failover tables, and stop every process it started.
 * Not a timing assertion: the figures are not checked.
 *
 * In `npm run test:system`, not `npm test`: it may apt-get install etcd and nghttp2-client (as root).
 */
const canInstall = process.getuid?.() === 0 || ["etcd", "h2load"].every((tool) => Bun.which(tool) !== null);

test.skipIf(!canInstall)(
  "scripts/bench-cluster.ts --quick prints the three tables and leaves no process behind",
  async () => {
    const out = await quickBenchOutput("bench-cluster.ts", "bench-(etcd|homekv|h2load)-");
    for (const workload of ["set (1 key)", "get (1 key, linearizable)", "set (batch of 100)"])
      for (const cell of ["leader | src/bench", "leader | h2load", "all 3 | src/bench", "all 3 | h2load"])
        expect(out).toContain(`| ${workload} | ${cell} |`);
    expect(out).toMatch(/\| HomeKV \| \d+ \| \d+ \| \d+ \|/);
    expect(out).toMatch(/\| etcd \| \d+ \| \d+ \| \d+ \|/);
    expect(out).toMatch(/\| HomeKV \(--raft-tick 100ms\) \| \d+ \|/);
    expect(out).toMatch(/\| etcd \(defaults\) \| \d+ \|/);
  },
  300_000,
);

if (!canInstall)
  console.log("bench-cluster smoke skipped: etcd/h2load are missing and this user cannot apt-get install them");
