import { expect } from "bun:test";
import { readFileSync } from "node:fs";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import type { ServerProcess } from "../helpers/processes.ts";
import { startTestServer, type TestServer, type TestServerOptions, useServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * What every hardening scenario checks after the hostile client had its go: the server process is
 * alive and answers a normal client correctly, its resident memory stayed within a bound, and
 * nothing the hostile client got back (nor anything the server logged) holds a stack trace.
 */

const MIB = 1024 * 1024;

/** Resident memory of a process now, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

export const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

/** A process's RSS when probing starts, then sampled every few milliseconds until `stop`, keeping the highest. */
export interface RssProbe {
  readonly beforeBytes: number;
  /** The RSS now, logged under `label`; sampling goes on. */
  mark(label: string): number;
  /** Stops sampling; returns the RSS now and the highest seen. Logs the figures under `label`. */
  stop(label: string): { afterBytes: number; peakBytes: number };
}

export function probeRss(pid: number, sampleMs = 25): RssProbe {
  const beforeBytes = rssBytes(pid);
  let peakBytes = beforeBytes;
  const timer = setInterval(() => {
    try {
      peakBytes = Math.max(peakBytes, rssBytes(pid));
    } catch {
      // the process is gone: the scenario's own checks say so
    }
  }, sampleMs);
  timer.unref(); // a test that fails before `stop` leaves nothing running
  return {
    beforeBytes,
    mark(label) {
      const bytes = rssBytes(pid);
      peakBytes = Math.max(peakBytes, bytes);
      console.log(`RSS ${label}: ${mib(bytes)} MiB`);
      return bytes;
    },
    stop(label) {
      clearInterval(timer);
      const afterBytes = rssBytes(pid);
      peakBytes = Math.max(peakBytes, afterBytes);
      console.log(
        `RSS ${label}: before ${mib(beforeBytes)} MiB, peak ${mib(peakBytes)} MiB, after ${mib(afterBytes)} MiB`,
      );
      return { afterBytes, peakBytes };
    },
  };
}

/**
 * The RSS of `pid` once it is at most `boundBytes`; fails after `timeoutMs`. What a burst allocated
 * comes back to the system over a few seconds (JavaScriptCore's scavenger), so an RSS read at once
 * measures the allocator's pace, not what the server still holds.
 */
export async function rssSettledUnder(pid: number, boundBytes: number, timeoutMs = 10_000): Promise<number> {
  let bytes = rssBytes(pid);
  const started = performance.now();
  await waitFor(() => (bytes = rssBytes(pid)) <= boundBytes, {
    what: `the RSS of process ${pid} to settle under ${mib(boundBytes)} MiB`,
    timeoutMs,
    intervalMs: 250,
    detail: () => `it is ${mib(bytes)} MiB`,
  });
  console.log(`RSS settled under ${mib(boundBytes)} MiB in ${Math.round(performance.now() - started)} ms`);
  return bytes;
}

/** Asserts that the RSS after a scenario is at most `slackMiB` above the RSS before it. */
export function expectRssWithin(probe: { beforeBytes: number }, after: { afterBytes: number }, slackMiB: number): void {
  expect(after.afterBytes - probe.beforeBytes).toBeLessThan(slackMiB * MIB);
}

/** What makes a server a target: in memory only, warmed by one normal round trip. */
const TARGET: TestServerOptions = {
  client: { timeoutMs: 10_000 },
  ready: (server) => expectServes(server, "warm-up"),
};

/** A `homekv serve --in-memory` (plus `extraArgs`) on a free loopback port, warmed up, with a client. */
export function startTarget(extraArgs: readonly string[] = []): Promise<TestServer> {
  return startTestServer(["--in-memory", ...extraArgs], TARGET);
}

/** The same, for the tests of a file (useServer), or a fresh one for each test with `each`. */
export function useTarget(extraArgs: readonly string[] = [], { each = false } = {}): TestServer {
  return useServer(["--in-memory", ...extraArgs], { ...TARGET, each });
}

/** A normal client writes a key and reads it back, within a few seconds: the server still serves. */
export async function expectServes(server: ServerProcess, tag: string): Promise<void> {
  expect(server.proc.exitCode).toBeNull();
  const client = new HomeKvClient({ address: server.address, timeoutMs: 5_000 });
  try {
    const key = `normal/${tag}`;
    const value = `still serving after ${tag}`;
    const { revision } = await client.set({ [key]: value });
    const { records } = await client.get([key]);
    expect(text(records[0]!.value)).toBe(value);
    expect(records[0]!.modRevision).toBe(revision);
  } finally {
    client.close();
  }
}

/** What a stack trace looks like in text: "    at fn (file:line)", a source path with a line number, node_modules. */
const STACK_TRACE = /(^|\n)\s*at\s+\S|\.[cm]?[jt]sx?:\d+|node_modules\/|\/src\/(server|storage|client)\//;

export function expectNoStackTrace(text: string): void {
  expect(text).not.toMatch(STACK_TRACE);
}

/** The server logged no stack trace and no internal error (a handler that threw something unexpected). */
export function expectCleanServerLog(server: ServerProcess): void {
  expectNoStackTrace(server.output());
  expect(server.output()).not.toContain("internal error");
}
