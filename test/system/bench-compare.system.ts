import { expect, test } from "bun:test";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the comparison: it must install what it lacks, start all three servers, print the
 * table, and stop every server it started. Not a timing assertion: the figures are not checked.
 *
 * In `npm run test:system`, not `npm test` (the file name is not one bun test picks up): it may
 * apt-get install etcd and Redis (as root).
 */
const canInstall =
  process.getuid?.() === 0 ||
  ["etcd", "redis-server", "redis-benchmark", "h2load"].every((tool) => Bun.which(tool) !== null);

/** A row of the throughput table: workload, in flight, load generator, HomeKV, etcd, the ratio in bold. */
const cellRow = (workload: string, generator: string) =>
  new RegExp(
    String.raw`\| ${workload.replace(/[()]/g, "\\$&")} \| \d+ \| ${generator} \| [\d,.]+ \| [\d,.]+ \| \*\*[\d.]+×\*\* \|`,
  );

test.skipIf(!canInstall)(
  "scripts/bench-compare.ts --quick prints the comparison and leaves no server behind",
  async () => {
    const out = await quickBenchOutput("bench-compare.ts", "bench-(etcd|redis|homekv)-");
    for (const row of ["get (1 key)", "set (1 key)", "set (batch of 100)", "mixed 90% get / 10% set"])
      expect(out).toMatch(cellRow(row, "src/bench"));
    // A client that is not ours, at the highest concurrency, for every workload but the mix.
    for (const row of ["get (1 key)", "set (1 key)", "set (batch of 100)"]) expect(out).toMatch(cellRow(row, "h2load"));
    expect(out).not.toContain("| mixed 90% get / 10% set | 4 | h2load |");
    expect(out).toContain("p99 at half of etcd's saturated load");
  },
  600_000,
);

if (!canInstall)
  console.log("bench-compare smoke skipped: etcd/redis are missing and this user cannot apt-get install them");
