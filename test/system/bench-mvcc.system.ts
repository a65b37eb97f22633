import { expect, test } from "bun:test";
import { ROOT } from "../helpers/processes.ts";

/**
 * A smoke run of scripts/bench-mvcc.ts at 2,000 keys: it must run every section (in process, a real
 * `homekv serve --in-memory`, redis-server), exit 0, and report every figure as a positive number.
 * No timing assertions: the figures are not judged, only present.
 *
 * In `npm run test:system`, not `npm test` (the file name is not one bun test picks up): it may
 * apt-get install Redis (as root).
 */
const canRunRedis = process.getuid?.() === 0 || ["redis-server", "redis-cli"].every((tool) => Bun.which(tool) !== null);

const FIGURES = [
  "keys",
  "throughput.mvccSetOpsPerSec",
  "throughput.mapSetOpsPerSec",
  "throughput.setMapOverMvcc",
  "throughput.mvccGetOpsPerSec",
  "throughput.mapGetOpsPerSec",
  "throughput.getMapOverMvcc",
  "setLatency.smallStoreNsPerSet",
  "setLatency.largeStoreNsPerSet",
  "setLatency.largeOverSmall",
  "gc.versionsCollected",
  "gc.slices",
  "gc.versionsPerSec",
  "gc.maxSliceMs",
  "memory.rawBytesPerKey",
  "memory.inProcess.heapBytesPerKey",
  "memory.homekv.rssBytesPerKey",
  "memory.redis.usedMemoryBytesPerKey",
  "memory.redis.rssBytesPerKey",
  "memory.homekvRssOverRedisRss",
];

const at = (report: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], report);

test.skipIf(!canRunRedis)(
  "scripts/bench-mvcc.ts --keys 2000 --json reports every figure as a positive number",
  async () => {
    const proc = Bun.spawn([process.execPath, `${ROOT}/scripts/bench-mvcc.ts`, "--keys", "2000", "--json"], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
      timeout: 120_000,
    });
    const [out, err, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    expect({ exitCode, err: exitCode === 0 ? "" : err }).toEqual({ exitCode: 0, err: "" });
    const report = JSON.parse(out);
    expect(report.keys).toBe(2000);
    const notPositive = FIGURES.filter((path) => {
      const value = at(report, path);
      return typeof value !== "number" || !Number.isFinite(value) || value <= 0;
    }).map((path) => `${path} = ${JSON.stringify(at(report, path))}`);
    expect(notPositive).toEqual([]);
    // The human table went to stderr, the machine info is in the JSON.
    expect(err).toContain("RSS/key: HomeKV vs Redis");
    expect(report.machine.nproc).toBeGreaterThan(0);
    // Every server it started is gone.
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect([report.memory.homekv.pid, report.memory.redis.pid].filter(alive)).toEqual([]);
  },
  130_000,
);

if (!canRunRedis) console.log("bench-mvcc smoke skipped: redis is missing and this user cannot apt-get install it");
