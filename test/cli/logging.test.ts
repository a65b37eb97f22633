import { expect, test } from "bun:test";
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

test("--log-level error keeps a server quiet; bad values are usage errors", async () => {
  const quiet = Bun.spawn(
    [process.execPath, "src/main.ts", "serve", "--in-memory", "-p", "0", "--log-level", "error"],
    { stdout: "pipe", stderr: "pipe" },
  );
  await Bun.sleep(1_000);
  quiet.kill("SIGTERM");
  const [out, err] = await Promise.all([new Response(quiet.stdout).text(), new Response(quiet.stderr).text()]);
  expect(await quiet.exited).toBe(0);
  expect(out + err).toBe("");
  for (const [flag, value] of [
    ["--log-format", "xml"],
    ["--log-level", "loud"],
    ["--fsync", "sometimes"],
  ]) {
    const result = await runHomekv(["serve", "--in-memory", "-p", "0", flag!, value!]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${flag} must be one of`);
  }
});
