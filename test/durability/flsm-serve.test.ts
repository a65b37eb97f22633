/**
 * `homekv serve --engine flsm` end to end, on real processes and files: small memtables freeze while
 * writes come in, a SIGKILL loses nothing acknowledged (the WAL is the memtables' log), a clean stop
 * and start come back through a checkpoint, and a data directory refuses the engine it was not
 * written by, naming both.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { HomeKvClient } from "../../src/client/client.ts";
import { parseExposition } from "../discovery/parse-exposition.ts";
import { text } from "../helpers/bytes.ts";
import { killServer, lines, recoveryLine, serversOnDataDirs, withClient } from "../helpers/durability.ts";
import { runHomekv } from "../helpers/processes.ts";

const FLSM = ["--engine", "flsm", "--memtable-bytes", "64KiB"];
const WRITERS = 4;
const BATCHES_PER_WRITER = 60;
const KEYS_PER_BATCH = 10;
/** 200 distinct keys written over and over: memtables freeze holding older versions and deletes. */
const KEYS = 200;

const { dataDir: newDir, start } = serversOnDataDirs("homekv-flsm-");

/** Every key's value as the acknowledged writes left it (undefined: deleted or never written). */
type Model = Map<string, string | undefined>;

/**
 * Concurrent writers, each committing batches of sets with one delete among them; what each
 * acknowledged write did goes into the model, in revision order.
 */
async function load(client: HomeKvClient): Promise<{ model: Model; revision: number }> {
  const acknowledged: { revision: number; changes: [string, string | undefined][] }[] = [];
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      for (let batch = 0; batch < BATCHES_PER_WRITER; batch++) {
        const keys = Array.from(
          { length: KEYS_PER_BATCH },
          (_, i) => `flsm/${(writer * 7_919 + batch * KEYS_PER_BATCH + i) % KEYS}`,
        );
        const value = `w${writer}b${batch}`.padEnd(120, ".");
        const sets = keys.slice(1);
        const { revision } = await client.set(Object.fromEntries(sets.map((key) => [key, value])));
        acknowledged.push({ revision, changes: sets.map((key) => [key, value]) });
        const deleted = await client.del([keys[0]!]);
        acknowledged.push({ revision: deleted.revision, changes: [[keys[0]!, undefined]] });
      }
    }),
  );
  const model: Model = new Map();
  for (const { changes } of acknowledged.sort((a, b) => a.revision - b.revision))
    for (const [key, value] of changes) model.set(key, value);
  return { model, revision: Math.max(...acknowledged.map((write) => write.revision)) };
}

async function expectState(client: HomeKvClient, model: Model): Promise<void> {
  const keys = [...model.keys()].sort();
  const { records } = await client.get(keys);
  expect(Object.fromEntries(keys.map((key, i) => [key, text(records[i]!.value)]))).toEqual(Object.fromEntries(model));
}

describe("homekv serve --engine flsm", () => {
  test("memtables freeze under load; a SIGKILL loses nothing acknowledged, nor does a clean restart", async () => {
    const dir = newDir();
    const first = await start(dir, [...FLSM, "--http-port", "0"]);
    expect(first.output()).toContain("engine flsm (memtables 64KiB, block cache 256MiB, tables zstd)");
    const { model, revision } = await withClient(first, async (client) => {
      const loaded = await load(client);
      const metrics = await client.metrics();
      expect(metrics).toMatchObject({ storageEngine: "flsm", revision: loaded.revision });
      // Hundreds of KiB of versions through 64 KiB memtables: several froze and went to tables.
      expect(metrics.memtableFlushes).toBeGreaterThan(3);
      expect(metrics.memtableBytes).toBeGreaterThan(0);
      await expectState(client, loaded.model);
      // The engine's own figures on /metrics: tables on level 0 (or below), what flushes wrote.
      const http = /HTTP endpoint on (http:\/\/127\.0\.0\.1:\d+)/.exec(first.output())?.[1];
      const exposition = parseExposition(await (await fetch(`${http}/metrics`)).text());
      const tables = [0, 1, 2, 3, 4].map(
        (level) => exposition.value("homekv_flsm_tables", { level: String(level) }) ?? 0,
      );
      expect(tables.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
      expect(exposition.value("homekv_flsm_flush_bytes_total")).toBeGreaterThan(0);
      // Flushes write into level 0: its bytes written are theirs.
      expect(exposition.value("homekv_flsm_level_bytes_written_total", { level: "0" })).toBe(
        exposition.value("homekv_flsm_flush_bytes_total"),
      );
      expect(exposition.value("homekv_flsm_write_amplification")).toBeGreaterThan(0);
      expect(exposition.value("homekv_flsm_table_memory_bytes")).toBeGreaterThan(0);
      expect(exposition.value("homekv_flsm_write_stopped")).toBe(0);
      return loaded;
    });
    expect(readFileSync(join(dir, "ENGINE"), "utf8")).toBe("flsm\n");
    await killServer(first);

    const second = await start(dir, FLSM);
    // The tables the flushes wrote, then the WAL after them.
    const recovered = recoveryLine(second.output());
    expect(recovered).toMatchObject({ revision, replayed: revision - (recovered.checkpoint ?? 0) });
    expect(recovered.checkpoint).toBeGreaterThan(0);
    await withClient(second, async (client) => {
      await expectState(client, model);
      // Revisions go on from the last one acknowledged.
      expect((await client.set({ "flsm/after": "x" })).revision).toBe(revision + 1);
    });
    model.set("flsm/after", "x");
    expect(await second.stop("SIGTERM")).toBe(0);

    const third = await start(dir, FLSM);
    expect(recoveryLine(third.output())).toMatchObject({ revision: revision + 1, checkpoint: revision + 1 });
    await withClient(third, (client) => expectState(client, model));
    expect(await third.stop("SIGTERM")).toBe(0);
  }, 60_000);

  test("a data directory refuses the other engine with one line naming both, and leaves the data alone", async () => {
    const serveOn = (dir: string, engine: string) =>
      runHomekv(["serve", "--host", "127.0.0.1", "-p", "0", "--data-dir", dir, "--engine", engine], {
        timeoutMs: 15_000,
      });
    for (const [written, other] of [
      ["flsm", "memory"],
      ["memory", "flsm"],
    ] as const) {
      const dir = newDir();
      const server = await start(dir, ["--engine", written]);
      await withClient(server, (client) => client.set({ kept: written }));
      expect(await server.stop("SIGTERM")).toBe(0);

      const refused = await serveOn(dir, other);
      expect(refused.exitCode).toBe(1);
      expect(lines(refused.stderr)).toEqual([
        `[error] data directory ${dir} was written by the ${written} engine, and this server was started with --engine ${other}: start it with --engine ${written}, or give it another --data-dir`,
      ]);

      const again = await start(dir, ["--engine", written]);
      await withClient(again, async (client) =>
        expect(text((await client.get(["kept"])).records[0]!.value)).toBe(written),
      );
      expect(await again.stop("SIGTERM")).toBe(0);
    }
  }, 60_000);
});
