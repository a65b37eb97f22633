/**
 * `homekv backup DIR` end to end, on real processes and files, for both engines: writers load the
 * server while the CLI asks for a backup; the server is SIGKILLed; a new server on the backup (on
 * another port) holds every write acknowledged before the call, each with its value, stands at the
 * revision the CLI printed, and holds exactly the writes up to it. What the CLI is refused with is
 * one line on stderr.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { expectOneLineError } from "../helpers/cli.ts";
import { killServer, serversOnDataDirs, withClient } from "../helpers/durability.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

const WRITERS = 4;
/** Keys rewritten and deleted over and over: the backup must hold each one's value at its revision. */
const KEYS = 120;

const { dataDir: newDir, start, killAfter } = serversOnDataDirs("homekv-backup-");

/** An acknowledged write: its revision, what it did to which keys (undefined: deleted), and whether it was acknowledged before the backup was asked for. */
interface Acked {
  revision: number;
  changes: [string, string | undefined][];
  beforeBackup: boolean;
}

/**
 * Writers committing sets of three keys and single deletes until `stop` resolves, and for
 * `afterStopWrites` more each (a load on both sides of the backup). `backupAsked` tells when the
 * backup call was made: a write acknowledged earlier must be in it.
 */
async function load(client: HomeKvClient, stop: Promise<unknown>, backupAsked: () => boolean): Promise<Acked[]> {
  const acked: Acked[] = [];
  let stopped = false;
  void stop.finally(() => {
    stopped = true;
  });
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      // Bounded: the backup takes well under these many writes; then 20 more after it.
      for (let n = 0, after = 0; n < 20_000 && after < 20; n++) {
        if (stopped) after++;
        const key = (i: number) => `key/${(writer * 37 + n * 7 + i * 13) % KEYS}`;
        if (n % 5 === 4) {
          const { revision } = await client.del([key(0)]);
          acked.push({ revision, changes: [[key(0), undefined]], beforeBackup: !backupAsked() });
        } else {
          const value = `w${writer}n${n}`.padEnd(100, ".");
          const keys = [key(0), key(1), key(2)];
          const { revision } = await client.set(Object.fromEntries(keys.map((k) => [k, value])));
          acked.push({ revision, changes: keys.map((k) => [k, value]), beforeBackup: !backupAsked() });
        }
      }
    }),
  );
  return acked;
}

/** Every key's value after the acknowledged writes up to `revision`, in revision order. */
function stateAt(acked: readonly Acked[], revision: number): Map<string, string | undefined> {
  const state = new Map<string, string | undefined>();
  for (let i = 0; i < KEYS; i++) state.set(`key/${i}`, undefined);
  for (const write of [...acked].sort((a, b) => a.revision - b.revision))
    if (write.revision <= revision) for (const [key, value] of write.changes) state.set(key, value);
  return state;
}

describe.each([
  ["flsm", ["--engine", "flsm", "--memtable-bytes", "64KiB"]],
  ["memory", ["--engine", "memory"]],
] as const)("homekv backup with the %s engine", (engine, flags) => {
  test("during a load: a server started on the backup after a SIGKILL holds every write acknowledged before the call, at the revision printed", async () => {
    const dir = newDir();
    const target = join(newDir(), "backup");
    const first = await start(dir, flags);
    let asked = false;
    const { acked, printed } = await withClient(first, async (client) => {
      const backingUp = Promise.withResolvers<string>();
      const writes = load(client, backingUp.promise, () => asked);
      // Some load first, so that the memtables freeze and tables are written (FLSM).
      await waitFor(async () => (await client.metrics()).revision >= 1_000, {
        what: "1,000 writes before the backup",
        timeoutMs: 20_000,
      });
      asked = true;
      const cli = await runHomekv(["backup", "-H", "127.0.0.1", "-p", String(first.port), target, "--json"], {
        timeoutMs: 30_000,
      });
      backingUp.resolve(cli.stdout);
      expect(cli).toMatchObject({ exitCode: 0, stderr: "" });
      return { acked: await writes, printed: JSON.parse(cli.stdout) };
    });
    expect(first.output()).toContain(`backup to ${target} at revision ${printed.revision}: ${printed.keys} keys`);
    await killServer(first);
    for (const field of ["revision", "keys", "bytes", "linkedBytes", "durationMs"])
      expect(Number.isInteger(printed[field])).toBe(true);
    expect(printed.linkedBytes > 0).toBe(engine === "flsm");
    expect(readdirSync(target).sort()).toEqual(
      engine === "flsm" ? ["ENGINE", "flsm", "wal"] : ["ENGINE", "checkpoints", "wal"],
    );

    const acknowledgedBefore = acked.filter((write) => write.beforeBackup);
    expect(acknowledgedBefore.length).toBeGreaterThan(900);
    expect(acked.some((write) => write.revision > printed.revision)).toBe(true);
    expect(Math.max(...acknowledgedBefore.map((write) => write.revision))).toBeLessThanOrEqual(printed.revision);

    const restored = await start(target, flags);
    expect(restored.port).not.toBe(first.port);
    await withClient(restored, async (client) => {
      const metrics = await client.metrics();
      expect(metrics).toMatchObject({ revision: printed.revision, keysCount: printed.keys });
      const expected = stateAt(acked, printed.revision);
      const keys = [...expected.keys()];
      const { records } = await client.get(keys);
      expect(new Map(keys.map((key, i) => [key, text(records[i]!.value)]))).toEqual(expected);
    });
    expect(await restored.stop("SIGTERM")).toBe(0);
  }, 30_000);
});

describe("what homekv backup is refused with, as one line", () => {
  test("an existing directory; a path that is not absolute; a server without data on disk", async () => {
    const server = await start(newDir());
    const port = ["-H", "127.0.0.1", "-p", String(server.port)];
    const taken = newDir();
    expectOneLineError(
      await runHomekv(["backup", ...port, taken]),
      1,
      `[error] server refused: FAILED_PRECONDITION: cannot back up to ${taken}: it already exists (a backup is only written to a new directory)`,
    );
    expect(readdirSync(taken)).toEqual([]);
    expectOneLineError(
      await runHomekv(["backup", ...port, "relative/dir"]),
      1,
      'server refused: INVALID_ARGUMENT: the backup directory "relative/dir" is not an absolute path',
    );
    expectOneLineError(await runHomekv(["backup", ...port]), 2, "backup needs one directory: homekv backup DIR");
    await killServer(server);

    const inMemory = await startServerProcess(["--in-memory"]);
    killAfter(inMemory);
    expectOneLineError(
      await runHomekv(["backup", "-H", "127.0.0.1", "-p", String(inMemory.port), join(taken, "b")]),
      1,
      "server refused: FAILED_PRECONDITION: this server keeps no data on disk (--in-memory): there is nothing to back up",
    );
    await killServer(inMemory);
  }, 30_000);
});
