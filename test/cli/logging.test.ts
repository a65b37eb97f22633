import { expect, test } from "bun:test";
import { envName } from "../../src/cli/settings.ts";
import { HomeKvClient } from "../../src/client/client.ts";
import { FROM_SOURCE, listeningPorts, ROOT, runHomekv, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

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

test("--log-level error keeps a server quiet; bad values are usage errors", async () => {
  const quiet = Bun.spawn(
    [...FROM_SOURCE, "serve", "--in-memory", "--host", "127.0.0.1", "-p", "0", "--log-level", "error"],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: 30_000 },
  );
  const output = Promise.all([new Response(quiet.stdout).text(), new Response(quiet.stderr).text()]);
  // It does not say where it listens: the port comes from its socket, and a call answered there
  // proves it went all the way through its start (where it would have logged) before the check.
  const port = await waitFor(() => quiet.exitCode === null && listeningPorts(quiet.pid)[0], {
    what: "the quiet server to listen",
  });
  const client = new HomeKvClient({ address: `127.0.0.1:${port}` });
  try {
    expect((await client.metrics()).revision).toBe(0);
  } finally {
    client.close();
  }
  quiet.kill("SIGTERM");
  const [out, err] = await output;
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
