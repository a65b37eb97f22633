import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readSync, truncateSync, writeSync } from "node:fs";
import type { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { killServer, lines, recoveryLine, serversOnDataDirs, walSegments, withClient } from "../helpers/durability.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";

const { dataDir, start, killAfter } = serversOnDataDirs("homekv-restart-");

/** Writes `count` batches of two keys each plus a delete; returns the last revision. */
async function writeSome(client: HomeKvClient, count: number): Promise<number> {
  let revision = 0;
  for (let i = 0; i < count; i++)
    revision = (await client.set({ [`r/${i}/a`]: `a${i}`, [`r/${i}/b`]: `b${i}` })).revision;
  await client.set({ "r/gone": "soon" });
  revision = (await client.del(["r/gone"])).revision;
  return revision;
}

async function expectData(client: HomeKvClient, count: number, revision: number): Promise<void> {
  const keys = Array.from({ length: count }, (_, i) => [`r/${i}/a`, `r/${i}/b`]).flat();
  const { records, revision: readAt } = await client.get([...keys, "r/gone"]);
  expect(records.map((r) => text(r.value))).toEqual([
    ...Array.from({ length: count }, (_, i) => [`a${i}`, `b${i}`]).flat(),
    undefined,
  ]);
  expect(readAt).toBe(revision);
  // Revisions continue where they were: the next write gets the next one.
  expect((await client.set({ "r/next": "n" })).revision).toBe(revision + 1);
}

describe("restarts", () => {
  test("data and revisions survive a clean SIGTERM restart, and the next start replays 0 WAL records", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const revision = await withClient(first, (client) => writeSome(client, 20));
    expect(await first.stop("SIGTERM")).toBe(0);
    // The shutdown wrote a checkpoint at the last revision.
    expect(first.output()).toContain(`checkpoint at revision ${revision}:`);

    const second = await start(dir);
    expect(recoveryLine(second.output())).toEqual({ revision, keys: 40, checkpoint: revision, replayed: 0 });
    await withClient(second, (client) => expectData(client, 20, revision));
    expect(await second.stop("SIGTERM")).toBe(0);
  });

  test("data and revisions survive a SIGKILL restart (the WAL is replayed)", async () => {
    const dir = dataDir();
    const first = await start(dir);
    const revision = await withClient(first, (client) => writeSome(client, 20));
    await killServer(first);

    const second = await start(dir);
    expect(recoveryLine(second.output())).toEqual({ revision, keys: 40, checkpoint: undefined, replayed: revision });
    await withClient(second, (client) => expectData(client, 20, revision));

    // Twice in a row, with a checkpoint in between: checkpoint plus the WAL after it.
    const third = await withClient(second, async (client) => {
      await client.checkpoint();
      return (await client.set({ "r/after-checkpoint": "x" })).revision;
    });
    await killServer(second);
    const again = await start(dir);
    expect(recoveryLine(again.output())).toEqual({ revision: third, keys: 42, checkpoint: third - 1, replayed: 1 });
    await withClient(again, async (client) => {
      expect(text((await client.get(["r/after-checkpoint"])).records[0]!.value)).toBe("x");
    });
  });
});

describe("metrics and homekv checkpoint", () => {
  test("metrics show the WAL at work, and `homekv checkpoint` (text and --json) checkpoints the current revision", async () => {
    const server = await start(dataDir());
    const port = String(server.port);
    const revision = await withClient(server, (client) => writeSome(client, 5));

    const before = await runHomekv(["metrics", "-H", "127.0.0.1", "-p", port, "--json"]);
    expect(before.exitCode).toBe(0);
    const metrics = JSON.parse(before.stdout);
    expect(metrics.persistent).toBe(true);
    expect(metrics.revision).toBe(revision);
    expect(metrics.wal_fsyncs).toBeGreaterThan(0);
    expect(metrics.wal_records).toBe(revision);
    expect(metrics.wal_segments).toBeGreaterThanOrEqual(1);
    expect(metrics.wal_bytes).toBeGreaterThan(0);
    expect(metrics.last_checkpoint_revision).toBe(0);

    const checkpoint = await runHomekv(["checkpoint", "-H", "127.0.0.1", "-p", port]);
    expect(checkpoint.exitCode).toBe(0);
    expect(lines(checkpoint.stdout)).toHaveLength(1);
    expect(checkpoint.stdout).toContain(`checkpoint at revision ${revision} on 127.0.0.1:${port}:`);
    const after = JSON.parse((await runHomekv(["metrics", "-H", "127.0.0.1", "-p", port, "--json"])).stdout);
    expect(after.last_checkpoint_revision).toBe(revision);
    expect(after.last_checkpoint_bytes).toBeGreaterThan(0);
    expect(after.last_checkpoint_unix_ms).toBeGreaterThan(0);

    const newer = await withClient(server, async (client) => (await client.set({ "m/newer": "1" })).revision);
    const json = await runHomekv(["checkpoint", "-H", "127.0.0.1", "-p", port, "--json"]);
    expect(json.exitCode).toBe(0);
    const written = JSON.parse(json.stdout);
    expect(written.revision).toBe(newer);
    expect(written.keys).toBe(11);
    expect(written.bytes).toBeGreaterThan(0);
    expect(typeof written.durationMs).toBe("number");
    expect(written.endpoint).toBe(`127.0.0.1:${port}`);
    expect(
      JSON.parse((await runHomekv(["metrics", "-H", "127.0.0.1", "-p", port, "--json"])).stdout)
        .last_checkpoint_revision,
    ).toBe(newer);
  });
});

describe("--in-memory and flags", () => {
  test("--in-memory keeps nothing across restarts, and `homekv checkpoint` against it fails with FAILED_PRECONDITION", async () => {
    const dir = dataDir();
    // Run in an empty directory: nothing may appear in it (no ./homekv-data).
    const first = await startServerProcess(["--in-memory"], { cwd: dir });
    killAfter(first);
    await withClient(first, (client) => client.set({ "mem/a": "1" }));
    const checkpoint = await runHomekv(["checkpoint", "-H", "127.0.0.1", "-p", String(first.port)]);
    expect(checkpoint.exitCode).toBe(1);
    const errorLines = lines(checkpoint.stderr);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain("FAILED_PRECONDITION");
    const metrics = await withClient(first, (client) => client.metrics());
    expect(metrics.persistent).toBe(false);
    expect(metrics.walFsyncs).toBe(0);
    expect(await first.stop("SIGTERM")).toBe(0);

    const second = await startServerProcess(["--in-memory"], { cwd: dir });
    killAfter(second);
    await withClient(second, async (client) => {
      expect((await client.get(["mem/a"])).records[0]!.value).toBeUndefined();
      expect((await client.metrics()).revision).toBe(0);
    });
    expect(await second.stop("SIGTERM")).toBe(0);
    expect(Array.from(new Bun.Glob("**").scanSync({ cwd: dir, onlyFiles: false }))).toEqual([]);
  });

  test("--fsync bogus is a usage error (exit 2) before anything starts", async () => {
    const dir = dataDir();
    const result = await runHomekv(["serve", "--host", "127.0.0.1", "-p", "0", "--data-dir", dir, "--fsync", "bogus"], {
      timeoutMs: 10_000,
    });
    expect(result.exitCode).toBe(2);
    const errorLines = lines(result.stderr);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain("--fsync");
    expect(errorLines[0]).toContain("bogus");
  });
});

describe("damaged WAL", () => {
  test("a flipped byte in the middle of a segment stops the next start with one line naming the file and byte offset", async () => {
    const dir = dataDir();
    const server = await start(dir);
    await withClient(server, async (client) => {
      for (let i = 0; i < 40; i++) await client.set({ [`c/${i}`]: `value-${i}`.padEnd(64, ".") });
    });
    await killServer(server);
    const [segment] = walSegments(dir);
    expect(walSegments(dir)).toHaveLength(1);

    // Flip one byte half-way through: about 20 records follow it.
    const offset = Math.floor(segment!.bytes / 2);
    const fd = openSync(segment!.path, "r+");
    try {
      const byte = new Uint8Array(1);
      readSync(fd, byte, 0, 1, offset);
      byte[0] = byte[0]! ^ 0xff;
      writeSync(fd, byte, 0, 1, offset);
    } finally {
      closeSync(fd);
    }

    const result = await runHomekv(["serve", "--host", "127.0.0.1", "-p", "0", "--data-dir", dir], {
      timeoutMs: 15_000,
    });
    expect(result.exitCode).toBe(1);
    const errorLines = lines(result.stderr);
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(segment!.path);
    expect(errorLines[0]).toMatch(/byte offset \d+/);
    const reported = Number(/byte offset (\d+)/.exec(errorLines[0]!)![1]);
    // The offset is that of the damaged record: at or before the flipped byte, and not far from it.
    expect(reported).toBeLessThanOrEqual(offset);
    expect(offset - reported).toBeLessThan(200);
    // Nothing was cut or rewritten: the damaged file is still there, whole, for an operator to look at.
    expect(walSegments(dir)[0]!.bytes).toBe(segment!.bytes);
  });

  test("a torn tail after a SIGKILL is cut, logged with its size, and the server starts with every earlier record", async () => {
    const dir = dataDir();
    const server = await start(dir);
    const revision = await withClient(server, async (client) => {
      for (let i = 0; i < 10; i++) await client.set({ [`t/${i}`]: `v${i}` });
      // The last record: key "t/last" (6 bytes), value of 10 bytes.
      return (await client.set({ "t/last": "0123456789" })).revision;
    });
    await killServer(server);

    // Frame header 12 + type 1 + revision 8 + op count 4 + kind 1 + key 4+6 + value 4+10.
    const lastRecordBytes = 12 + 1 + 8 + 4 + 1 + 4 + 6 + 4 + 10;
    const cut = 5;
    const segment = walSegments(dir).at(-1)!;
    truncateSync(segment.path, segment.bytes - cut);

    const next = await start(dir);
    expect(next.output()).toContain(`cut ${lastRecordBytes - cut} bytes`);
    expect(recoveryLine(next.output()).revision).toBe(revision - 1);
    await withClient(next, async (client) => {
      const { records } = await client.get([...Array.from({ length: 10 }, (_, i) => `t/${i}`), "t/last"]);
      expect(records.map((r) => text(r.value))).toEqual([...Array.from({ length: 10 }, (_, i) => `v${i}`), undefined]);
      // The cut revision is reused by the next write: no hole, no duplicate.
      expect((await client.set({ "t/after": "x" })).revision).toBe(revision);
    });
    expect(walSegments(dir).at(-1)!.bytes).toBeGreaterThan(segment.bytes - lastRecordBytes);
    await killServer(next);

    // And the repaired log reads back cleanly.
    const again = await start(dir);
    expect(again.output()).not.toContain("cut ");
    expect(recoveryLine(again.output()).revision).toBe(revision);
  });
});
