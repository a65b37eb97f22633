import { expect, test } from "bun:test";
import { envName } from "../../src/cli/settings.ts";
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
    [process.execPath, "src/main.ts", "serve", "--in-memory", "-p", "0", "--log-level", "error"],
    { stdout: "pipe", stderr: "pipe" },
  );
  await Bun.sleep(1_000);
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
