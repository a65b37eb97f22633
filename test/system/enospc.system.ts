/**
 * A full disk: the server refuses writes with UNAVAILABLE ("the disk is full"), keeps serving reads
 * and keeps running, and takes writes again once there is room. Needs root and a working
 * `mount -t tmpfs` (a small tmpfs is the full disk); skipped with a printed reason otherwise.
 *
 * In `npm run test:system`, not `npm test` (the file name is not one bun test picks up): it mounts
 * a tmpfs (as root).
 */
import { afterAll, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient, HomeKvRpcError } from "../../src/client/client.ts";
import { errorCode } from "../../src/io/fs/file-system.ts";
import { text } from "../helpers/bytes.ts";
import { killServer, startOn } from "../helpers/durability.ts";
import type { ServerProcess } from "../helpers/processes.ts";

function run(command: string[]): { ok: boolean; output: string } {
  const result = Bun.spawnSync(command, { stdout: "pipe", stderr: "pipe", timeout: 10_000 });
  return { ok: result.exitCode === 0, output: `${result.stdout.toString()}${result.stderr.toString()}`.trim() };
}

const mounts: string[] = [];
const servers: ServerProcess[] = [];

/** A fresh directory under /tmp with a tmpfs of `size` on it. */
function mountTmpfs(size: string): string {
  const path = mkdtempSync(join(tmpdir(), "homekv-enospc-"));
  const mounted = run(["mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path]);
  if (!mounted.ok) {
    rmSync(path, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${mounted.output}`);
  }
  mounts.push(path);
  return path;
}

function remount(path: string, size: string): void {
  const result = run(["mount", "-o", `remount,size=${size}`, path]);
  if (!result.ok) throw new Error(`remount of ${path} failed: ${result.output}`);
}

/** Why the tests cannot run here, or undefined when they can. */
function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root";
  try {
    const probe = mountTmpfs("1m");
    run(["umount", probe]);
    rmSync(probe, { recursive: true, force: true });
    mounts.splice(mounts.indexOf(probe), 1);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

const reason = skipReason();
if (reason) console.log(`enospc tests skipped: ${reason} (they need root and mount -t tmpfs)`);
const enospcTest = reason ? test.skip : test;

afterAll(async () => {
  for (const server of servers) await killServer(server);
  for (const path of mounts) {
    // Always unmount, even after a failure; lazily if something still holds it.
    if (!run(["umount", path]).ok) run(["umount", "-l", path]);
    rmSync(path, { recursive: true, force: true });
  }
});

async function startServer(dataDir: string, extraArgs: readonly string[] = []): Promise<ServerProcess> {
  const server = await startOn(dataDir, extraArgs);
  servers.push(server);
  return server;
}

/** Fills the file system of `dir` to the last byte with a file of its own; returns its path. */
function fillUp(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const chunk = new Uint8Array(64 * 1024).fill(7);
  try {
    const started = Date.now();
    for (let i = 0; i < 100_000 && Date.now() - started < FILL_MS_MAX; i++) {
      try {
        writeSync(fd, chunk);
      } catch (error) {
        if (errorCode(error) === "ENOSPC") return path;
        throw error;
      }
    }
    throw new Error(`${dir} did not fill up`);
  } finally {
    closeSync(fd);
  }
}

function expectDiskFull(error: unknown): void {
  expect(error).toBeInstanceOf(HomeKvRpcError);
  const rpc = error as HomeKvRpcError;
  expect(`${Status[rpc.code]}: ${rpc.details}`).toMatch(/^UNAVAILABLE: .*disk is full/);
}

const VALUE = new Uint8Array(64 * 1024).fill(42);
const WRITES_MAX = 1_000;
const FILL_MS_MAX = 30_000;

enospcTest(
  "a full disk fails Sets with UNAVAILABLE (disk full); reads and the process go on; writes resume once there is room",
  async () => {
    const mount = mountTmpfs("2m");
    const dataDir = join(mount, "data");
    const server = await startServer(dataDir);
    const client = new HomeKvClient({ address: server.address });
    try {
      await client.set({ existing: "here" });
      const acked: string[] = [];
      let lastRevision = 0;
      let failure: unknown;
      const started = Date.now();
      for (let i = 0; i < WRITES_MAX && Date.now() - started < FILL_MS_MAX; i++) {
        try {
          lastRevision = (await client.set({ [`fill/${i}`]: VALUE })).revision;
          acked.push(`fill/${i}`);
        } catch (error) {
          failure = error;
          break;
        }
      }
      console.log(
        `enospc: ${acked.length} Sets of 64 KiB acknowledged before the 2 MiB tmpfs was full; then: ${failure}`,
      );
      expect(failure).toBeDefined();
      expectDiskFull(failure);
      expect(acked.length).toBeGreaterThan(5);

      // Still full: the next Set is refused the same way, without hurting anything.
      expectDiskFull(await client.set({ "fill/again": VALUE }).catch((e: unknown) => e));
      const small = await client.set({ tiny: "t" }).then(
        (r) => r,
        (e: unknown) => e,
      );
      if (small instanceof Error) expectDiskFull(small);

      // Reads go on, with everything acknowledged; the process lives.
      const { records } = await client.get(["existing", ...acked]);
      expect(text(records[0]!.value)).toBe("here");
      expect(
        records
          .slice(1)
          .every((r) => r.value !== undefined && r.value.byteLength === VALUE.byteLength && r.value[0] === 42),
      ).toBe(true);
      expect(server.proc.exitCode).toBeNull();
      const metrics = await client.metrics();
      expect(metrics.revision).toBe(small instanceof Error ? lastRevision : lastRevision + 1);

      // Room again: writes resume, and revisions go on without a hole.
      remount(mount, "16m");
      const resumed = await client.set({ "after/room": VALUE });
      expect(resumed.revision).toBe(metrics.revision + 1);
      expect((await client.get(["after/room"])).records[0]!.value?.byteLength).toBe(VALUE.byteLength);
    } finally {
      client.close();
    }

    // What the failed writes left in the WAL does not stand in the way of recovery.
    await killServer(server);
    const again = await startServer(dataDir);
    const check = new HomeKvClient({ address: again.address });
    try {
      const { records } = await check.get(["existing", "after/room"]);
      expect(records.map((r) => r.value !== undefined)).toEqual([true, true]);
    } finally {
      check.close();
    }
    expect(await again.stop("SIGTERM")).toBe(0);
  },
  120_000,
);

enospcTest(
  "a full disk when the WAL rolls over to a new segment is UNAVAILABLE (disk full) too, and writes resume once there is room",
  async () => {
    const mount = mountTmpfs("4m");
    const dataDir = join(mount, "data");
    // The smallest segments: every write after one over 4 KiB starts a new segment file.
    const server = await startServer(dataDir, ["--wal-segment-bytes", "4096"]);
    const client = new HomeKvClient({ address: server.address });
    let filler: string | undefined;
    try {
      const before = (await client.set({ first: VALUE })).revision;
      filler = fillUp(mount);

      expectDiskFull(await client.set({ second: VALUE }).catch((e: unknown) => e));
      // Each refused roll-over leaves no file handle behind (Linux: count the server's open fds).
      const openFds = () =>
        existsSync(`/proc/${server.proc.pid}/fd`) ? readdirSync(`/proc/${server.proc.pid}/fd`).length : 0;
      const fdsBefore = openFds();
      for (let i = 0; i < 5; i++) expectDiskFull(await client.set({ third: "small" }).catch((e: unknown) => e));
      expect(openFds()).toBeLessThanOrEqual(fdsBefore);
      expect(server.proc.exitCode).toBeNull();
      expect((await client.get(["first"])).records[0]!.value?.byteLength).toBe(VALUE.byteLength);

      rmSync(filler);
      const resumed = await client.set({ fourth: VALUE });
      expect(resumed.revision).toBe(before + 1);
      const { records } = await client.get(["first", "second", "third", "fourth"]);
      expect(records.map((r) => r.value !== undefined)).toEqual([true, false, false, true]);
    } finally {
      client.close();
    }

    await killServer(server);
    const again = await startServer(dataDir, ["--wal-segment-bytes", "4096"]);
    const check = new HomeKvClient({ address: again.address });
    try {
      const { records } = await check.get(["first", "fourth"]);
      expect(records.map((r) => r.value?.byteLength)).toEqual([VALUE.byteLength, VALUE.byteLength]);
    } finally {
      check.close();
    }
    expect(await again.stop("SIGTERM")).toBe(0);
  },
  120_000,
);
