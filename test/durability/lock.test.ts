import { afterAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { killServer, lines, startOn } from "../helpers/durability.ts";
import { runHomekv, type ServerProcess, scratchDir } from "../helpers/processes.ts";

const dir = scratchDir("homekv-lock-");
const servers: ServerProcess[] = [];

afterAll(async () => {
  for (const server of servers) await killServer(server);
  dir.cleanup();
});

/** Runs a second `homekv serve` on the directory; it must give up on its own (the timeout is only a backstop). */
async function serveAgain(): Promise<{ exitCode: number; stderr: string; elapsedMs: number }> {
  const started = performance.now();
  const result = await runHomekv(["serve", "--host", "127.0.0.1", "-p", "0", "--data-dir", dir.path], {
    timeoutMs: 15_000,
  });
  return { exitCode: result.exitCode, stderr: result.stderr, elapsedMs: performance.now() - started };
}

test("a second server on a data dir in use exits at once with one line naming the dir and the holder's pid", async () => {
  const first = await startOn(dir.path);
  servers.push(first);
  const client = new HomeKvClient({ address: first.address });
  try {
    await client.set({ "lock/a": "1", "lock/b": "2" });
    expect(readFileSync(join(dir.path, "LOCK"), "utf8").trim()).toBe(String(first.proc.pid));

    const second = await serveAgain();
    expect(second.exitCode).not.toBe(0);
    expect(second.exitCode).not.toBeNull();
    expect(second.elapsedMs).toBeLessThan(5_000);
    const errorLines = lines(second.stderr);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(dir.path);
    expect(errorLines[0]).toContain(`pid ${first.proc.pid}`);

    // The refused server took nothing from the first: its lock and its service are intact.
    expect(readFileSync(join(dir.path, "LOCK"), "utf8").trim()).toBe(String(first.proc.pid));
    expect(first.proc.exitCode).toBeNull();
    await client.set({ "lock/c": "3" });
    const third = await serveAgain();
    expect(third.exitCode).not.toBe(0);
    expect(lines(third.stderr)[0]).toContain(`pid ${first.proc.pid}`);
  } finally {
    client.close();
  }
});

test("after the holder is SIGKILLed its stale lock is taken over, and the new server has the data", async () => {
  const first = servers[0]!;
  await killServer(first);
  // SIGKILL leaves the LOCK behind, naming a process that no longer runs.
  expect(readFileSync(join(dir.path, "LOCK"), "utf8").trim()).toBe(String(first.proc.pid));

  const next = await startOn(dir.path);
  servers.push(next);
  const client = new HomeKvClient({ address: next.address });
  try {
    expect(readFileSync(join(dir.path, "LOCK"), "utf8").trim()).toBe(String(next.proc.pid));
    const { records } = await client.get(["lock/a", "lock/b", "lock/c"]);
    expect(records.map((r) => text(r.value))).toEqual(["1", "2", "3"]);
    expect((await client.metrics()).revision).toBe(2);
  } finally {
    client.close();
  }
  // A clean stop releases the lock.
  expect(await next.stop("SIGTERM")).toBe(0);
  expect(existsSync(join(dir.path, "LOCK"))).toBe(false);
});
