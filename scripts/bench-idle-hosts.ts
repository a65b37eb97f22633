#!/usr/bin/env bun
/**
 * What idle Raft groups cost a real process: three processes (scripts/bench/idle-host.ts), each
 * running G groups of the three in one RaftHost over the peer transport on loopback, with their
 * logs in one engine per process. Once every group has committed an entry and (with quiescence) gone quiet,
 * each process's CPU (/proc) is measured for `--seconds`. Printed per mode: the busiest node's
 * share of one core, every node's, and the largest RSS. With quiescence, one node is then killed
 * and the other two are measured again once their groups have gone quiet without it.
 *
 *   bun scripts/bench-idle-hosts.ts [--groups 256] [--seconds 10] [--tick-ms 100] [--modes off,on] [--no-kill]
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
/** With quiescence, also measure the two left once the third is killed. */
const withKill = !process.argv.includes("--no-kill");
const SETTLE_MS_MAX = 120_000;

type Host = Bun.Subprocess<"ignore", "pipe", "inherit">;

/** A host's stdout, line by line, as it comes. */
async function* lines(child: Host): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    const parts = text.split("\n");
    text = parts.pop()!;
    yield* parts;
  }
}

/** Reads a host's lines until `done` accepts one, for at most SETTLE_MS_MAX (then the host is killed). */
async function until(child: Host, reader: AsyncGenerator<string>, what: string, done: (line: string) => boolean) {
  const timeout = setTimeout(() => child.kill(), SETTLE_MS_MAX);
  try {
    for (let next = await reader.next(); !next.done; next = await reader.next()) if (done(next.value)) return;
  } finally {
    clearTimeout(timeout);
  }
  throw new Error(`a host exited before ${what} (within ${SETTLE_MS_MAX} ms)`);
}

/** CPU and RSS of `hosts` over the next `seconds`: a row of the table. */
async function measure(label: string, hosts: readonly Host[]): Promise<void> {
  const before = hosts.map((child) => cpuSeconds(child.pid));
  await Bun.sleep(seconds * 1_000); // the measurement window itself, not a synchronisation
  const shares = hosts.map((child, i) => (cpuSeconds(child.pid) - before[i]!) / seconds);
  const rss = Math.max(...hosts.map((child) => rssBytes(child.pid))) / 2 ** 20;
  const each = shares.map((share) => `${(share * 100).toFixed(2)}%`).join(", ");
  console.log(`| ${label} | ${(Math.max(...shares) * 100).toFixed(2)}% | ${each} | ${rss.toFixed(0)} |`);
}

console.log(
  `# ${groups} Raft groups × 3 nodes, one process per node, ticks every ${tickMs} ms, ${seconds} s measured\n`,
);
console.log("| quiescence | CPU of the busiest node, share of one core | each node | largest RSS, MiB |");
console.log("| --- | ---: | --- | ---: |");
for (const mode of modes) {
  const dir = mkdtempSync(join(tmpdir(), "homekv-idle-"));
  const ports = freePorts(3);
  const children: Host[] = [1, 2, 3].map((id) =>
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
  const readers = children.map(lines);
  try {
    await Promise.all(
      children.map((child, i) =>
        until(child, readers[i]!, "its groups settled", (line) => line.startsWith("settled ")),
      ),
    );
    await measure(mode, children);
    if (mode === "on" && withKill) {
      // One node dies: the others' groups elect where it led, and go quiet without it.
      children[2]!.kill("SIGKILL");
      const survivors = children.slice(0, 2);
      await Promise.all(
        survivors.map((child, i) =>
          until(child, readers[i]!, "its groups were quiet again", (line) => line === "awake 0"),
        ),
      );
      await measure("on, one node killed", survivors);
    }
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((child) => child.exited));
    rmSync(dir, { recursive: true, force: true });
  }
}
