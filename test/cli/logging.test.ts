import { expect, test } from "bun:test";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { envName } from "../../src/cli/settings.ts";
import { HomeKvClient } from "../../src/client/client.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";

test("--log-format json: one JSON object per line, with time, level and message", async () => {
  const server = await startServerProcess(["--log-format", "json"]);
  expect(await server.stop()).toBe(0);
  const lines = server
    .output()
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  expect(lines.length).toBeGreaterThanOrEqual(3);
  for (const line of lines) {
    expect(Object.keys(line).sort()).toEqual(["level", "message", "time"]);
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  }
  expect(lines.some((l) => l.level === "info" && /listening on 127\.0\.0\.1:\d+/.test(l.message))).toBe(true);
  expect(lines.some((l) => l.message === "HomeKV stopped")).toBe(true);
});

test("--log-level error keeps a server quiet; bad values are one usage-error line", async () => {
  const quiet = Bun.spawn(
    [process.execPath, "src/main.ts", "serve", "--in-memory", "--host", "127.0.0.1", "-p", "0", "--log-level", "error"],
    { stdout: "pipe", stderr: "pipe" },
  );
  // Silent, it cannot say where it listens: find its port, then have it answer a call, before
  // asking it to stop (and to stay silent while stopping).
  const deadline = Date.now() + 15_000;
  let ports = listeningPorts(quiet.pid);
  while (ports.length === 0) {
    if (quiet.exitCode !== null || Date.now() > deadline)
      throw new Error(`homekv serve --log-level error was not listening within 15 s (exit code ${quiet.exitCode})`);
    await Bun.sleep(20);
    ports = listeningPorts(quiet.pid);
  }
  const client = new HomeKvClient({ address: `127.0.0.1:${ports[0]}` });
  expect((await client.set({ k: "v" })).revision).toBe(1);
  client.close();
  quiet.kill("SIGTERM");
  const [out, err] = await Promise.all([new Response(quiet.stdout).text(), new Response(quiet.stderr).text()]);
  expect(await quiet.exited).toBe(0);
  expect(out + err).toBe("");
  for (const [flag, value, choices] of [
    ["--log-format", "xml", "human, json"],
    ["--log-level", "loud", "debug, info, warn, error"],
    ["--fsync", "sometimes", "always, everysec, never"],
  ] as const) {
    const result = await runHomekv(["serve", "--in-memory", "-p", "0", flag, value]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toBe(
      `[error] Invalid value for argument: ${flag} (${value}). Expected one of: ${choices}.\n`,
    );
    // The same rule for the environment (and the config file, test/cli/config.test.ts).
    const fromEnv = await runHomekv(["serve", "--in-memory", "-p", "0"], { env: { [envName(flag.slice(2))]: value } });
    expect(fromEnv.exitCode).toBe(2);
    expect(fromEnv.stderr).toBe(`[error] ${envName(flag.slice(2))} must be one of ${choices}, not "${value}"\n`);
  }
});

test("--help lists the values of an enumerated flag", async () => {
  const serve = await runHomekv(["serve", "--help"]);
  expect(serve.stdout).toContain("--fsync=<always|everysec|never>");
  expect(serve.stdout).toContain("--log-level=<debug|info|warn|error>");
  const bench = await runHomekv(["bench", "--help"]);
  expect(bench.stdout).toContain("--op=<get|set|del|mixed>");
  const wrong = await runHomekv(["bench", "--op", "put", "-p", "1"]);
  expect(wrong).toMatchObject({ exitCode: 2, stdout: "" });
  expect(wrong.stderr).toBe("[error] Invalid value for argument: --op (put). Expected one of: get, set, del, mixed.\n");
});

/** The TCP ports process `pid` listens on (Linux): its socket descriptors, found among /proc/net/tcp's listeners. */
function listeningPorts(pid: number): number[] {
  const sockets = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    // A descriptor may close between the listing and the reading.
    const link = (() => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return "";
      }
    })();
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode) sockets.add(inode);
  }
  const LISTEN = "0A";
  return ["tcp", "tcp6"]
    .flatMap((table) => readFileSync(`/proc/${pid}/net/${table}`, "utf8").trim().split("\n").slice(1))
    .map((row) => row.trim().split(/\s+/))
    .filter((columns) => columns[3] === LISTEN && sockets.has(columns[9]!))
    .map((columns) => Number.parseInt(columns[1]!.split(":")[1]!, 16));
}
