import { describe, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { expectOneLineError } from "../helpers/cli.ts";
import { runHomekv } from "../helpers/processes.ts";
import { useServer } from "../helpers/server.ts";

const server = useServer();
const run = (...args: string[]) => runHomekv([...args, "-p", String(server.port)]);

describe("the README walk-through", () => {
  test("set, get, del and metrics", async () => {
    expect((await run("set", "dummy_key=dummy_value")).stdout).toMatch(/^OK \(revision \d+\)\n$/);
    expect((await run("set", "trail=big_cedder", "people=5", "start_time=12:00")).exitCode).toBe(0);
    expect((await run("get", "trail", "people", "start_time", "missing_key")).stdout).toBe(
      'trail        "big_cedder"\npeople       "5"\nstart_time   "12:00"\nmissing_key  (nil)\n',
    );
    expect((await run("del", "dummy_key", "missing_key")).stdout).toMatch(/^deleted 1 \(revision \d+\)\n$/);
    const metrics = await run("metrics");
    expect(metrics.stdout).toMatch(/^keys_count\s+3$/m);
    expect(metrics.stdout).toMatch(/^values_size_in_bytes\s+16$/m);
    // A server of one shows no Raft fields (they are for a replicated member).
    expect(metrics.stdout).not.toMatch(/^(raft_|replicated)/m);
  });
});

describe("values", () => {
  test("split at the first =, so values may contain =", async () => {
    await run("set", "equation=a=b+c", "empty=");
    const { stdout } = await run("get", "--json", "equation", "empty");
    expect(JSON.parse(stdout).records).toEqual([
      { key: "equation", value: "a=b+c" },
      { key: "empty", value: "" },
    ]);
  });

  test("bytes that are not UTF-8 and control characters are shown escaped, never raw", async () => {
    const client = new HomeKvClient({ address: server.address });
    await client.set([
      ["binary", new Uint8Array([0x66, 0xff, 0x00, 0x1b])],
      ["text", "tab\there \u001b[31m"],
    ]);
    client.close();
    const human = await run("get", "binary", "text");
    expect(human.stdout).toBe('binary  "f\\xff\\x00\\x1b"\ntext    "tab\\there \\x1b[31m"\n');
    expect(human.stdout).not.toContain("\u001b");
    const json = JSON.parse((await run("get", "--json", "binary")).stdout);
    expect(json.records[0]).toEqual({
      key: "binary",
      value_base64: Buffer.from([0x66, 0xff, 0x00, 0x1b]).toString("base64"),
    });
  });
});

describe("--json", () => {
  test("every client command prints JSON", async () => {
    const set = JSON.parse((await run("set", "--json", "j=1")).stdout);
    expect(set.revision).toBeGreaterThan(0);
    const get = JSON.parse((await run("get", "--json", "j")).stdout);
    expect(get).toEqual({ revision: set.revision, records: [{ key: "j", value: "1" }] });
    const del = JSON.parse((await run("del", "--json", "j")).stdout);
    expect(del).toEqual({ revision: set.revision + 1, deleted: 1 });
    const metrics = JSON.parse((await run("metrics", "--json")).stdout);
    expect(metrics.revision).toBe(set.revision + 1);
  });
});

describe("connection settings", () => {
  test("HOMEKV_HOST and HOMEKV_PORT are used when no flag is given", async () => {
    const result = await runHomekv(["set", "from_env=yes"], {
      env: { HOMEKV_HOST: "127.0.0.1", HOMEKV_PORT: String(server.port) },
    });
    expect(result.exitCode).toBe(0);
  });

  test("flags win over the environment", async () => {
    const result = await runHomekv(["get", "-H", "127.0.0.1", "-p", String(server.port), "from_env"], {
      env: { HOMEKV_PORT: "1" },
    });
    expect(result.stdout).toContain('"yes"');
  });
});

describe("errors: one line on stderr, non-zero exit, and the server goes on", () => {
  test("set without = is a usage error", async () => {
    expectOneLineError(await run("set", "foo"), 2, 'expected KEY=VALUE, got "foo"');
  });

  test("no keys given", async () => {
    expectOneLineError(await run("get"), 2, "at least one key");
    expectOneLineError(await run("del"), 2, "at least one key");
    expectOneLineError(await run("set"), 2, "at least one pair");
  });

  test("a bad port", async () => {
    expectOneLineError(await runHomekv(["get", "-p", "99999", "k"]), 2, "--port must be a whole number");
    expectOneLineError(await runHomekv(["get", "k"], { env: { HOMEKV_PORT: "abc" } }), 2, "HOMEKV_PORT");
  });

  test("server unreachable: names the address, answers within seconds", async () => {
    const started = performance.now();
    const result = await runHomekv(["get", "-p", "1", "k"]);
    expectOneLineError(result, 1, "cannot reach HomeKV at 127.0.0.1:1");
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  test("a rejection by the server shows its status and message", async () => {
    expectOneLineError(await run("set", "dup=1", "dup=2"), 1, 'INVALID_ARGUMENT: key "dup" appears more than once');
    expectOneLineError(await run("set", `${"k".repeat(5000)}=v`), 1, "--max-key-bytes");
    expect((await run("get", "trail")).exitCode).toBe(0);
  });

  test("a flag the command lacks, a flag without its value, --no- of a value flag: refused, nothing written", async () => {
    expect((await run("set", "kept=1", "5=1")).exitCode).toBe(0);
    // citty alone took these: the first deleted the keys "kept" and "5", the second wrote without a TTL.
    expectOneLineError(await run("del", "kept", "--revision", "5"), 2, "homekv del has no flag --revision");
    expectOneLineError(await run("set", "kept=2", "--tll=5s"), 2, "homekv set has no flag --tll");
    expectOneLineError(await run("set", "kept=2", "--if-revision"), 2, "--if-revision needs a value");
    expectOneLineError(await run("set", "kept=2", "--no-if-revision"), 2, "--if-revision takes a value");
    expectOneLineError(await run("set", "kept=2", "--ttl", "0.4ms"), 2, '--ttl must be at least 1ms, not "0.4ms"');
    const kept = await run("get", "kept", "5", "--json");
    expect(JSON.parse(kept.stdout).records.map((r: { value: string }) => r.value)).toEqual(["1", "1"]);
  });

  test("an unknown command", async () => {
    const result = await runHomekv(["frobnicate"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });
});

describe("--help and --version on every command", () => {
  for (const command of ["serve", "get", "set", "del", "metrics", "checkpoint", "backup"]) {
    test(command, async () => {
      for (const flag of ["--help", "-h"]) {
        const help = await runHomekv([command, flag]);
        expect(help.exitCode).toBe(0);
        expect(help.stdout).toContain(`homekv ${command}`);
      }
      const version = await runHomekv([command, "--version"]);
      expect(version).toMatchObject({ exitCode: 0, stdout: `${(await import("../../package.json")).version}\n` });
    });
  }
});
