#!/usr/bin/env bun
/**
 * What idle Raft groups cost a real process: three processes (scripts/bench/idle-host.ts), each
 * running G groups of the three in one RaftHost over the peer transport on loopback, with a
 * durable log per group. Once every group has committed an entry and (with quiescence) gone quiet,
 * each process's CPU (/proc) is measured for `--seconds`. Printed per mode: the busiest node's
 * share of one core, every node's, and the largest RSS.
 *
 *   bun scripts/bench-idle-hosts.ts [--groups 256] [--seconds 10] [--tick-ms 100] [--modes off,on]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "../test/helpers/free-ports.ts";
import { flag } from "./bench/args.ts";
import { cpuSeconds } from "./bench/cpu.ts";
import { rssBytes } from "./bench/rss.ts";

const groups = flag("--groups", "256");
const seconds = Number(flag("--seconds", "10"));
const tickMs = flag("--tick-ms", "100");
const modes = flag("--modes", "off,on").split(",");
const SETTLE_MS_MAX = 120_000;

/** Reads a child's stdout until a line starting with "settled"; returns the stats it printed. */
async function settled(child: Bun.Subprocess<"ignore", "pipe", "inherit">): Promise<void> {
  const decoder = new TextDecoder();
  let text = "";
  const timeout = setTimeout(() => child.kill(), SETTLE_MS_MAX);
  try {
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk, { stream: true });
      const line = text.split("\n").find((l) => l.startsWith("settled "));
      if (line) return;
    }
  } finally {
    clearTimeout(timeout);
  }
  throw new Error(`a host exited before its groups settled (within ${SETTLE_MS_MAX} ms); it printed: ${text}`);
}

console.log(
  `# ${groups} Raft groups × 3 nodes, one process per node, ticks every ${tickMs} ms, ${seconds} s measured\n`,
);
console.log("| quiescence | CPU of the busiest node, share of one core | each node | largest RSS, MiB |");
console.log("| --- | ---: | --- | ---: |");
for (const mode of modes) {
  const dir = mkdtempSync(join(tmpdir(), "homekv-idle-"));
  const ports = freePorts(3);
  const children = [1, 2, 3].map((id) =>
    Bun.spawn(
      [
        process.execPath,
        `${import.meta.dir}/bench/idle-host.ts`,
        ...["--id", String(id), "--ports", ports.join(","), "--groups", groups],
        ...["--quiesce", mode, "--tick-ms", tickMs, "--dir", dir],
      ],
      { stdout: "pipe", stderr: "inherit" },
    ),
  );
  try {
    await Promise.all(children.map(settled));
    const before = children.map((child) => cpuSeconds(child.pid));
    await Bun.sleep(seconds * 1_000); // the measurement window itself, not a synchronisation
    const shares = children.map((child, i) => (cpuSeconds(child.pid) - before[i]!) / seconds);
    const rss = Math.max(...children.map((child) => rssBytes(child.pid))) / 2 ** 20;
    const each = shares.map((share) => `${(share * 100).toFixed(2)}%`).join(", ");
    console.log(`| ${mode} | ${(Math.max(...shares) * 100).toFixed(2)}% | ${each} | ${rss.toFixed(0)} |`);
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((child) => child.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}
