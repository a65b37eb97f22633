import { expect, test } from "bun:test";
import { FROM_SOURCE, ROOT, runHomekv } from "../helpers/processes.ts";
import { useServer, waitForWatchers } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const server = useServer(["--history-revisions", "20"]);

/** `homekv watch …` running in the background, with its stdout as lines. */
function spawnWatch(args: string[]) {
  const proc = Bun.spawn([...FROM_SOURCE, "watch", "-p", String(server.port), ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
    timeout: 30_000,
  });
  let stdout = "";
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stdout) stdout += decoder.decode(chunk, { stream: true });
  })();
  const lines = () => stdout.split("\n").filter((line) => line !== "");
  return {
    proc,
    lines,
    /** Waits (bounded) until `count` lines were printed. */
    async waitForLines(count: number, timeoutMs = 10_000): Promise<string[]> {
      await waitFor(() => lines().length >= count || proc.exitCode !== null, {
        what: `${count} lines from homekv watch`,
        timeoutMs,
        detail: () => `it printed:\n${lines().join("\n")}`,
      });
      return lines();
    },
    async stderr() {
      await reading;
      return new Response(proc.stderr).text();
    },
  };
}

test("watch --prefix --json prints one JSON object per change until SIGINT, then exits 0", async () => {
  const watch = spawnWatch(["--prefix", "p/", "--json"]);
  await waitForWatchers(server.client, 1);
  const { revision: first } = await server.client.set({ "p/a": "1", "q/a": "not watched" });
  await server.client.set([["p/bin", new Uint8Array([0xff, 0x00])]]);
  const { revision: deleted } = await server.client.del(["p/a"]);
  const lines = await watch.waitForLines(3);
  expect(lines.map((line) => JSON.parse(line))).toEqual([
    { type: "put", key: "p/a", value: "1", revision: first },
    { type: "put", key: "p/bin", value_base64: "/wA=", revision: first + 1 },
    { type: "delete", key: "p/a", value: null, revision: deleted },
  ]);
  watch.proc.kill("SIGINT");
  expect(await watch.proc.exited).toBe(0);
  expect(await watch.stderr()).toBe("");
  await waitForWatchers(server.client, 0);
}, 30_000);

test('human output with --rev and --prev replays from a revision: PUT key "value" / DELETE key', async () => {
  const { revision: start } = await server.client.set({ "h/k": "one" });
  await server.client.set({ "h/k": 'two "quoted"\n' });
  await server.client.del(["h/k"]);
  const watch = spawnWatch(["h/k", "--rev", String(start), "--prev"]);
  const lines = await watch.waitForLines(3);
  expect(lines).toEqual([
    `PUT h/k "one" (revision ${start}, previous (nil))`,
    `PUT h/k "two \\"quoted\\"\\n" (revision ${start + 1}, previous "one")`,
    `DELETE h/k (revision ${start + 2}, previous "two \\"quoted\\"\\n")`,
  ]);
  watch.proc.kill("SIGINT");
  expect(await watch.proc.exited).toBe(0);
}, 30_000);

test("a watch the server ends is one error line and exit 1; a wrong call is exit 2", async () => {
  for (let i = 0; i < 25; i++) await server.client.set({ "c/k": String(i) });
  const { compactedRevision } = await server.client.metrics();
  const compacted = await runHomekv(["watch", "-p", String(server.port), "--prefix", "c/", "--rev", "1"]);
  expect(compacted.exitCode).toBe(1);
  expect(compacted.stderr.trim().split("\n")).toHaveLength(1);
  expect(compacted.stderr).toContain("OUT_OF_RANGE");
  expect(compacted.stderr).toContain(`start from is ${compactedRevision + 1}`);

  const inverted = await runHomekv(["watch", "-p", String(server.port), "--from", "m", "--to", "a"]);
  expect(inverted.exitCode).toBe(1);
  expect(inverted.stderr).toContain('end "a" is not after start "m"');

  for (const args of [[], ["k", "--prefix", "p/"], ["a", "b"]]) {
    const wrong = await runHomekv(["watch", "-p", String(server.port), ...args]);
    expect({ args, exitCode: wrong.exitCode }).toEqual({ args, exitCode: 2 });
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
  }
}, 60_000);
