import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import type { Database } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import { bytes } from "../../helpers/bytes.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { interceptWrites } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * What a backup's revision covers, found by an adversarial review: commands that take a revision
 * and leave no version (a Compact, a delete of a missing key, a transaction whose compare failed)
 * right after a flush; a backup asked for while writes outrun the FLSM engine's flushes; and a
 * target reached through a symbolic link into the data directory.
 */

const ENGINES = ["memory", "flsm"] as const;

function opener(fs: MemoryFileSystem, engine: (typeof ENGINES)[number]) {
  return (dir: string) =>
    openDurableDatabase({
      fs,
      dir,
      isAlive: () => false,
      historyRevisions: 100_000,
      engine: engine === "flsm" ? { kind: "flsm", memtableBytes: 3_000 } : { kind: "memory" },
    });
}

/** Commands acknowledged with a revision and no version in the memtable, each returning its revision. */
const VERSIONLESS: [string, (db: Database) => Promise<number>][] = [
  ["a Compact", async (db) => (await db.compact(8)).revision],
  ["a delete of a missing key", async (db) => (await db.write([{ key: "missing", value: null }])).revision],
  [
    "a transaction whose compare fails",
    async (db) =>
      (
        await db.txn({
          compares: [{ key: "k1", target: "value", op: "==", value: bytes("nope") }],
          success: [{ key: "k1", value: bytes("x") }],
          failure: [],
        })
      ).revision,
  ],
];

describe("a command that leaves no version, acknowledged right after a flush, is in the backup", () => {
  for (const engine of ENGINES)
    for (const [what, act] of VERSIONLESS)
      test(`${engine}: ${what}`, async () => {
        const fs = new MemoryFileSystem();
        const open = opener(fs, engine);
        const db = await open("/data");
        try {
          for (let i = 0; i < 10; i++) await db.write([{ key: `k${i}`, value: bytes(`v${i}`) }]);
          await db.checkpoint(); // FLSM: every memtable flushed, the active one empty
          const acknowledged = await act(db);
          await fs.mkdirp("/backups");
          const backup = await db.backup("/backups/b");
          expect(backup.revision).toBe(acknowledged);
          const restored = await open("/backups/b");
          try {
            expect(restored.revision).toBe(acknowledged);
            expect(restored.compactedRevision).toBe(db.compactedRevision);
          } finally {
            await restored.close();
          }
        } finally {
          await db.close();
        }
      });
});

test("flsm: a backup asked for while writes outrun the flushes ends while they go on", async () => {
  const memory = new MemoryFileSystem();
  // Every sync takes 5 ms (a slow disk): flushes lag the writes, which stop at two frozen memtables
  // and go on as each flush ends, so there is always a memtable waiting for its flush.
  const fs = interceptWrites(memory, async (call, run) => {
    if (call === "sync") await Bun.sleep(5);
    return run();
  });
  const db = await openDurableDatabase({
    fs,
    dir: "/data",
    isAlive: () => false,
    fsync: "never",
    historyRevisions: 1_000,
    engine: { kind: "flsm", memtableBytes: 4_000 },
  });
  await memory.mkdirp("/backups");
  const WRITES_PER_WRITER = 2_000;
  let backedUp = false;
  let writes = 0;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let n = 0; !backedUp && n < WRITES_PER_WRITER; n++) {
      await db.write([{ key: `w${w}/${n % 200}`, value: bytes("x".repeat(100)) }]);
      writes++;
    }
  });
  try {
    await waitFor(() => db.stats().flsm!.flushes >= 2, { what: "the load to flush" });
    const backup = await db.backup("/backups/b");
    backedUp = true;
    // Before the fix it waited for no memtable at all to be frozen, which only the end of the load allows.
    expect(writes).toBeLessThan(8 * WRITES_PER_WRITER);
    expect(backup.revision).toBeGreaterThan(0);
  } finally {
    backedUp = true;
    await Promise.all(writers);
    await db.close();
  }
}, 60_000);

const scratch = mkdtempSync(join(tmpdir(), "homekv-backup-link-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

test("a target reached through a symbolic link into the data directory is refused, and nothing is written there", async () => {
  const dataDir = join(scratch, "data");
  const db = await openDurableDatabase({ dir: dataDir, engine: { kind: "flsm", memtableBytes: 3_000 } });
  try {
    for (let i = 0; i < 50; i++) await db.write([{ key: `k${i}`, value: bytes("v".repeat(100)) }]);
    await db.checkpoint();
    symlinkSync(join(dataDir, "flsm"), join(scratch, "alias"));
    expect(await rejectionMessage(db.backup(join(scratch, "alias", "999999.sst")))).toMatch(
      /inside the server's data directory/,
    );
    expect(existsSync(join(dataDir, "flsm", "999999.sst"))).toBe(false);
    // A link elsewhere is followed and fine.
    mkdirSync(join(scratch, "elsewhere"));
    symlinkSync(join(scratch, "elsewhere"), join(scratch, "to-elsewhere"));
    const backup = await db.backup(join(scratch, "to-elsewhere", "b"));
    expect(existsSync(join(scratch, "elsewhere", "b", "flsm", "CURRENT"))).toBe(true);
    expect(backup.revision).toBe(db.revision);
  } finally {
    await db.close();
  }
}, 60_000);
