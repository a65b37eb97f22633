import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { SCRATCH_PREFIX } from "../../scripts/bench/partitioned.ts";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the partitions benchmark: it must start a 3-node, a 1-node and a 5-node
 * partitioned cluster and a plain server, print the three tables with every cell and the JSON line, and
 * stop every process and remove every data directory it made. Not a timing assertion: the figures
 * are not checked, only that every cell has them and no request failed.
 *
 * In `npm run test:system`, not `npm test`: it runs ten servers one cluster after another.
 */
const scratchDirs = () => new Set(readdirSync(tmpdir()).filter((name) => name.startsWith(SCRATCH_PREFIX)));

test("scripts/bench-partitions.ts --quick --json prints the three tables and leaves no process or directory behind", async () => {
  const before = scratchDirs();
  const out = await quickBenchOutput("bench-partitions.ts", SCRATCH_PREFIX, ["--json"]);
  const number = String.raw`[\d,.]+`;
  for (const concurrency of [1, 32])
    for (const keys of ["one partition", "10 partitions"])
      expect(out).toMatch(new RegExp(String.raw`\| ${keys} \| ${concurrency} \|( ${number} \|){9} 0 \|`));
  const cores = (nodes: number) => Array.from({ length: nodes }, () => number).join(" / ");
  const led = (nodes: number) => Array.from({ length: nodes }, () => String.raw`\d+`).join(" / ");
  for (const op of ["set", "get"]) {
    expect(out).toMatch(
      new RegExp(String.raw`\| single server \| ${op} \|( ${number} \|){4} ${number} \|( ${number} \|){4} — \| 0 \|`),
    );
    for (const [nodes, label] of [
      [1, "1 node \\(R1\\)"],
      [3, "3 nodes \\(R3\\)"],
      [5, "5 nodes \\(R3\\)"],
    ] as const)
      expect(out).toMatch(
        new RegExp(
          String.raw`\| ${label} \| ${op} \|( ${number} \|){4} ${cores(nodes)} \|( ${number} \|){4} ${led(nodes)} \| 0 \|`,
        ),
      );
  }
  // Part 3: h2load's hot key on the plain server and on 3 nodes, nothing failed.
  for (const servers of ["single server", "3 nodes"])
    for (const op of ["set", "get"])
      expect(out).toMatch(new RegExp(String.raw`\| ${servers} \| ${op} \|( ${number} \|){3} 0 \|`));
  const figures = JSON.parse(out.trim().split("\n").at(-1)!);
  expect(figures.setOfTen).toHaveLength(4);
  expect(figures.singleKey).toHaveLength(8);
  expect(figures.h2loadHotKey).toHaveLength(4);
  for (const cell of [...figures.setOfTen, ...figures.singleKey, ...figures.h2loadHotKey])
    expect(cell.opsPerSecond).toBeGreaterThan(0);
  expect([...scratchDirs()].filter((name) => !before.has(name))).toEqual([]);
}, 300_000);
