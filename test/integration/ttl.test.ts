import { describe, expect, test } from "bun:test";
import { formatTtl } from "../../src/cli/get.ts";
import { parseTtl } from "../../src/cli/set.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { startOn } from "../helpers/durability.ts";
import { type CliResult, runHomekv, scratchDir } from "../helpers/processes.ts";
import { useServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";

const server = useServer();

/** Waits until `key` is gone (polling `get`); returns how long that took. Fails after `timeoutMs`. */
async function waitUntilGone(c: HomeKvClient, key: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await c.get([key])).records[0]!.value === undefined, {
    what: `${key} to expire`,
    timeoutMs,
  });
  return Date.now() - started;
}

function expectOneLineError(result: CliResult, text: string) {
  expect(result.exitCode).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(result.stderr).toContain(text);
}

describe("TTL over the API", () => {
  test("a key with a 300 ms TTL is readable with its time left, then deleted by a committed write within ~1 s", async () => {
    const setAt = Date.now();
    await server.client.set({ "ttl/plain": "p" });
    const { revision } = await server.client.set({ "ttl/short": "v" }, { ttlMs: 300 });
    const { records } = await server.client.get(["ttl/short", "ttl/plain"], { withTtl: true });
    expect(text(records[0]!.value)).toBe("v");
    expect(records[0]!.ttlMs).toBeGreaterThan(0);
    expect(records[0]!.ttlMs).toBeLessThanOrEqual(300);
    expect(text(records[1]!.value)).toBe("p");
    expect(records[1]!.ttlMs).toBe(0);
    expect((await server.client.get(["ttl/short"])).records[0]!.ttlMs).toBe(0); // only when asked for

    await waitUntilGone(server.client, "ttl/short", 3_000);
    expect(Date.now() - setAt).toBeLessThan(1_300);
    const expiredAt = (await server.client.metrics()).revision;
    expect(expiredAt).toBe(revision + 1);

    // A committed delete: the latest revision misses the key, the revision it was written at still has it.
    const latest = await server.client.get(["ttl/short", "ttl/plain"]);
    expect(latest.revision).toBe(expiredAt);
    expect(latest.records[0]!.value).toBeUndefined();
    expect(text(latest.records[1]!.value)).toBe("p");
    const before = await server.client.get(["ttl/short"], { revision });
    expect(text(before.records[0]!.value)).toBe("v");
    // Scans see it too: gone at the latest revision, there (with its time to live) at the one it was written.
    expect((await server.client.scanPage({ prefix: "ttl/" })).records.map((r) => r.key)).not.toContain("ttl/short");
    const then = await server.client.scanPage({ prefix: "ttl/", revision });
    expect(then.records.find((r) => r.key === "ttl/short")?.ttlMs).toBeGreaterThan(0);
  });

  test("a key rewritten without a TTL before its deadline stays", async () => {
    await server.client.set({ "ttl/rewritten": "old" }, { ttlMs: 200 });
    const { revision } = await server.client.set({ "ttl/rewritten": "new" });
    // Keys expire in deadline order: once a key due later is gone, the old deadline has been dealt with.
    await server.client.set({ "ttl/marker": "m" }, { ttlMs: 200 });
    await waitUntilGone(server.client, "ttl/marker", 3_000);
    expect(text((await server.client.get(["ttl/rewritten"])).records[0]!.value)).toBe("new");
    // The marker's write and its expiry, and no expiry command spent on the rewritten key.
    expect((await server.client.metrics()).revision).toBe(revision + 2);
  });
});

describe("TTL across a restart", () => {
  test("pending TTLs survive SIGTERM: one past due while down expires at once, the other at its deadline", async () => {
    const dir = scratchDir();
    try {
      let first = await startOn(dir.path);
      const c1 = new HomeKvClient({ address: first.address });
      const soonDeadline = Date.now() + 1_500;
      await c1.set({ "restart/soon": "s" }, { ttlMs: 1_500 });
      const laterDeadline = Date.now() + 4_000;
      await c1.set({ "restart/later": "l" }, { ttlMs: 4_000 });
      await c1.set({ "restart/kept": "k" });
      c1.close();
      expect(await first.stop("SIGTERM")).toBe(0);
      expect(Date.now()).toBeLessThan(soonDeadline); // stopped before "soon" was due…
      // …which it becomes while the server is down. Time itself is what is tested here, and there is no
      // server to ask: the wait is as long as the deadline needs and no longer.
      await Bun.sleep(soonDeadline + 100 - Date.now());

      const second = await startOn(dir.path);
      const c2 = new HomeKvClient({ address: second.address });
      try {
        const startRevision = (await c2.get(["restart/kept"])).revision;
        await waitUntilGone(c2, "restart/soon", 1_000);
        const later = (await c2.get(["restart/later"], { withTtl: true })).records[0]!;
        expect(text(later.value)).toBe("l");
        expect(later.ttlMs).toBeGreaterThan(0);
        expect(later.ttlMs).toBeLessThanOrEqual(4_000);
        await waitUntilGone(c2, "restart/later", 8_000);
        expect(Date.now()).toBeGreaterThanOrEqual(laterDeadline);
        expect(text((await c2.get(["restart/kept"])).records[0]!.value)).toBe("k");
        expect((await c2.metrics()).revision).toBeGreaterThan(startRevision);
      } finally {
        c2.close();
        expect(await second.stop("SIGTERM")).toBe(0);
      }

      // The expiries were committed like any write: the next start has them.
      first = await startOn(dir.path);
      const c3 = new HomeKvClient({ address: first.address });
      try {
        const { records } = await c3.get(["restart/soon", "restart/later", "restart/kept"]);
        expect(records.map((r) => text(r.value))).toEqual([undefined, undefined, "k"]);
      } finally {
        c3.close();
        expect(await first.stop("SIGTERM")).toBe(0);
      }
    } finally {
      dir.cleanup();
    }
  }, 30_000);
});

describe("homekv set --ttl and get --with-ttl", () => {
  const cli = (...args: string[]) => runHomekv([...args, "-p", String(server.port)]);

  test("set --ttl gives every pair the TTL; get --with-ttl shows the time left", async () => {
    const set = await cli("set", "--ttl", "30s", "cli/a=1", "cli/b=2");
    expect(set.exitCode).toBe(0);
    expect(set.stdout).toMatch(/^OK \(revision \d+\)\n$/);
    await cli("set", "cli/plain=p");

    const human = await cli("get", "--with-ttl", "cli/a", "cli/b", "cli/plain", "cli/missing");
    expect(human.exitCode).toBe(0);
    const lines = human.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^cli\/a {8}"1" \(ttl (2\d(\.\d)?|30)s\)$/);
    expect(lines[1]).toMatch(/^cli\/b {8}"2" \(ttl (2\d(\.\d)?|30)s\)$/);
    expect(lines[2]).toBe('cli/plain    "p"');
    expect(lines[3]).toBe("cli/missing  (nil)");

    const json = JSON.parse((await cli("get", "--with-ttl", "--json", "cli/a", "cli/plain")).stdout);
    expect(json.records[0].ttl_ms).toBeGreaterThan(20_000); // four CLI starts after the set: seconds on a loaded machine
    expect(json.records[0].ttl_ms).toBeLessThanOrEqual(30_000);
    expect(json.records[1]).toEqual({ key: "cli/plain", value: "p", ttl_ms: null });
    // Without --with-ttl, nothing changes.
    expect((await cli("get", "cli/a")).stdout).toBe('cli/a  "1"\n');
    expect(JSON.parse((await cli("get", "--json", "cli/a")).stdout).records[0]).toEqual({ key: "cli/a", value: "1" });
  });

  test("a key set with --ttl 300ms is gone within a second", async () => {
    expect((await cli("set", "--ttl", "300ms", "cli/short=x")).exitCode).toBe(0);
    await waitUntilGone(server.client, "cli/short", 2_000);
    expect((await cli("get", "cli/short")).stdout).toBe("cli/short  (nil)\n");
  });

  test("--ttl 0, a TTL over a year or not a duration is one usage-error line", async () => {
    expectOneLineError(await cli("set", "--ttl", "0", "cli/z=1"), "--ttl");
    expectOneLineError(await cli("set", "--ttl", "8761h", "cli/z=1"), "at most a year");
    expectOneLineError(await cli("set", "--ttl", "soon", "cli/z=1"), "--ttl");
    expect((await server.client.get(["cli/z"])).records[0]!.value).toBeUndefined();
  });
});

describe("TTL flags, parsed and shown", () => {
  test("parseTtl takes a duration above zero and at most a year", () => {
    expect(parseTtl("30s")).toBe(30_000);
    expect(parseTtl("500ms")).toBe(500);
    expect(parseTtl("8760h")).toBe(365 * 24 * 3600 * 1000);
    for (const bad of ["0", "0s", "8761h", "-1s", "soon", ""]) expect(() => parseTtl(bad)).toThrow(UsageError);
  });

  test("formatTtl: ms below a second, tenths below a minute, two units above", () => {
    expect(formatTtl(1)).toBe("1ms");
    expect(formatTtl(999)).toBe("999ms");
    expect(formatTtl(1_000)).toBe("1s");
    expect(formatTtl(29_549)).toBe("29.5s");
    expect(formatTtl(30_000)).toBe("30s");
    expect(formatTtl(270_000)).toBe("4m 30s");
    expect(formatTtl(7_500_000)).toBe("2h 5m");
    expect(formatTtl(365 * 86_400_000)).toBe("365d 0h");
  });
});
