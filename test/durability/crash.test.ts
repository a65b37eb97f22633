/**
 * THE crash test: one data directory, many SIGKILLs. Each cycle starts a real server on the
 * directory, lets concurrent writers commit overlapping multi-key batches, kills the server at a
 * random moment (a seeded schedule: rerun a failure with HOMEKV_CRASH_SEED), restarts it on the same
 * directory and checks that nothing acknowledged was lost and no batch was applied in part.
 *
 *   HOMEKV_CRASH_CYCLES   number of kill/restart cycles (default 20)
 *   HOMEKV_CRASH_SEED     seed of the schedule (default: random, printed on failure)
 */
import { afterAll, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { HomeKvClient } from "../../src/client/client.ts";
import { mulberry32 } from "../../src/random.ts";
import { text } from "../helpers/bytes.ts";
import { killServer, recoveryLine, startOn, walSegments } from "../helpers/durability.ts";
import { type ServerProcess, scratchDir } from "../helpers/processes.ts";

const CYCLES = Number(process.env.HOMEKV_CRASH_CYCLES ?? 20);
const SEED = Number(process.env.HOMEKV_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 32));
const WRITERS = 8;
/** Each writer owns this many keys; batch b writes BATCH_KEYS of them starting at b * STRIDE. */
const KEYS_PER_WRITER = 8;
const BATCH_KEYS = 5;
const STRIDE = 3; // consecutive batches of a writer share BATCH_KEYS - STRIDE keys
const KILL_AFTER_MS = [50, 400] as const;
/** Bounds of each writer loop in one cycle, whatever the kill delay. */
const BATCHES_PER_CYCLE_MAX = 20_000;
const CYCLE_WRITE_MS_MAX = 3_000;

/** Server flags by cycle: small segments and checkpoint thresholds make crashes hit roll-overs and checkpoints. */
function flagsFor(cycle: number): string[] {
  switch (cycle % 4) {
    case 1:
      return ["--wal-segment-bytes", "16384", "--checkpoint-wal-bytes", "65536"];
    case 2:
      // Checkpoints nearly back to back: some kills land inside one.
      return ["--wal-segment-bytes", "65536", "--checkpoint-wal-bytes", "8192"];
    case 3:
      // everysec acknowledges before the fsync, but after the write(2): a killed process loses nothing.
      return ["--wal-segment-bytes", "16384", "--checkpoint-wal-bytes", "32768", "--fsync", "everysec"];
    default:
      return [];
  }
}

const keyOf = (writer: number, slot: number) => `crash/w${writer}/k${slot}`;
const valueFor = (writer: number, batch: number) => `${writer}:${batch}`;
const slotsOf = (batch: number) => Array.from({ length: BATCH_KEYS }, (_, j) => (batch * STRIDE + j) % KEYS_PER_WRITER);

interface Writer {
  id: number;
  /** Batches known to be applied, in order (acknowledged, or found applied after a crash). */
  applied: number[];
  /** Sent but not acknowledged when the server died: it may or may not have been applied. */
  inDoubt: number | undefined;
  next: number;
}

/** The writer's keys as they must read after applying `batches` in order. */
function expectedState(writer: number, batches: readonly number[]): (string | undefined)[] {
  const state: (string | undefined)[] = Array.from({ length: KEYS_PER_WRITER }, () => undefined);
  for (const batch of batches) for (const slot of slotsOf(batch)) state[slot] = valueFor(writer, batch);
  return state;
}

const dir = scratchDir("homekv-crash-");
let live: ServerProcess | undefined;

afterAll(async () => {
  if (live) await killServer(live);
  dir.cleanup();
});

test(`${CYCLES} SIGKILLs during concurrent batched writes lose no acknowledged batch and tear none`, async () => {
  const random = mulberry32(SEED);
  const writers: Writer[] = Array.from({ length: WRITERS }, (_, id) => ({
    id,
    applied: [],
    inDoubt: undefined,
    next: 0,
  }));
  let highestAckedRevision = 0;
  const totals = {
    acked: 0,
    inDoubtApplied: 0,
    inDoubtLost: 0,
    /** Revisions of the checkpoints written. */
    checkpoints: new Set<number>(),
    tornTailsCut: 0,
    segments: new Set<string>(),
  };
  /** Where the kills landed, as the files on disk tell. */
  const killedDuring = { checkpointWrite: 0, checkpointCleanup: 0, severalSegments: 0 };
  const cycleLog: string[] = [];

  /** Reads every writer's keys at one revision and checks them against the model. */
  async function verify(client: HomeKvClient, cycle: number): Promise<void> {
    const keys = writers.flatMap((w) => Array.from({ length: KEYS_PER_WRITER }, (_, slot) => keyOf(w.id, slot)));
    const { records } = await client.get(keys);
    for (const writer of writers) {
      const actual = records
        .slice(writer.id * KEYS_PER_WRITER, (writer.id + 1) * KEYS_PER_WRITER)
        .map((r) => text(r.value));
      const without = expectedState(writer.id, writer.applied);
      const withInDoubt =
        writer.inDoubt === undefined ? undefined : expectedState(writer.id, [...writer.applied, writer.inDoubt]);
      const matches = (expected: (string | undefined)[]) => expected.every((value, slot) => actual[slot] === value);
      if (withInDoubt && matches(withInDoubt)) {
        writer.applied.push(writer.inDoubt!);
        totals.inDoubtApplied++;
      } else if (matches(without)) {
        if (writer.inDoubt !== undefined) totals.inDoubtLost++;
      } else {
        const lastAcked = writer.applied.at(-1);
        throw new Error(
          `after the crash of cycle ${cycle}, writer ${writer.id}'s keys match neither its acknowledged batches ` +
            `(last ${lastAcked}) nor those plus the batch in flight (${writer.inDoubt}):\n` +
            actual
              .map(
                (value, slot) =>
                  `  ${keyOf(writer.id, slot)}: ${value} (acknowledged state ${without[slot]}, with in-flight ${withInDoubt?.[slot]})`,
              )
              .join("\n"),
        );
      }
      writer.inDoubt = undefined;
    }
  }

  try {
    live = await startOn(dir.path, flagsFor(0));
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const server = live;
      const client = new HomeKvClient({ address: server.address, timeoutMs: 5_000 });
      const unexpected: unknown[] = [];
      let killed = false;
      const cycleStart = Date.now();

      const runWriter = async (writer: Writer) => {
        for (let n = 0; n < BATCHES_PER_CYCLE_MAX && !killed && Date.now() - cycleStart < CYCLE_WRITE_MS_MAX; n++) {
          const batch = writer.next++;
          writer.inDoubt = batch;
          try {
            const { revision } = await client.set(
              slotsOf(batch).map((slot) => [keyOf(writer.id, slot), valueFor(writer.id, batch)] as const),
            );
            // Acknowledged: from here on this batch must survive every crash.
            writer.applied.push(batch);
            writer.inDoubt = undefined;
            highestAckedRevision = Math.max(highestAckedRevision, revision);
            totals.acked++;
          } catch (error) {
            if (!killed) unexpected.push(error);
            return; // the batch stays in doubt
          }
        }
      };
      const running = writers.map(runWriter);
      const killAfter = KILL_AFTER_MS[0] + Math.floor(random() * (KILL_AFTER_MS[1] - KILL_AFTER_MS[0]));
      // The kill comes at a random moment of the writes: the moment is what is tested, not an event.
      await Bun.sleep(killAfter);
      killed = true;
      await killServer(server);
      await Promise.all(running);
      client.close();
      expect(unexpected).toEqual([]);

      // Seen in the log, or at the next recovery: a SIGKILL may take the log line's unflushed bytes
      // with it, not the checkpoint (written, synced and renamed before the line).
      for (const [, at] of server.output().matchAll(/checkpoint at revision (\d+)/g))
        totals.checkpoints.add(Number(at));
      const segments = walSegments(dir.path);
      for (const segment of segments) totals.segments.add(segment.name);
      if (segments.length > 1) killedDuring.severalSegments++;
      const checkpointFiles = readdirSync(join(dir.path, "checkpoints"));
      if (checkpointFiles.some((name) => name.endsWith(".tmp"))) killedDuring.checkpointWrite++;
      if (checkpointFiles.filter((name) => !name.endsWith(".tmp")).length > 1) killedDuring.checkpointCleanup++;

      // Restart on the same directory (with the next cycle's flags) and check what survived.
      live = await startOn(dir.path, flagsFor(cycle + 1));
      const recovery = recoveryLine(live.output());
      if (recovery.checkpoint !== undefined) totals.checkpoints.add(recovery.checkpoint);
      if (/cut \d+ bytes/.test(live.output())) totals.tornTailsCut++;
      const checker = new HomeKvClient({ address: live.address });
      try {
        await verify(checker, cycle);
        const { revision } = await checker.metrics();
        expect(revision).toBeGreaterThanOrEqual(highestAckedRevision);
        expect(recovery.revision).toBe(revision);
      } finally {
        checker.close();
      }
      cycleLog.push(
        `cycle ${cycle}: killed after ${killAfter} ms [${flagsFor(cycle).join(" ") || "defaults"}], recovered revision ${recovery.revision} (checkpoint ${recovery.checkpoint ?? "none"}, ${recovery.replayed} replayed)`,
      );
    }
    // The schedule did what it is for: crashes came with checkpoints and segment roll-overs around.
    if (CYCLES >= 4) {
      expect(totals.checkpoints.size).toBeGreaterThan(0);
      expect(killedDuring.severalSegments).toBeGreaterThan(0);
    }
    console.log(
      `crash test (seed ${SEED}): ${CYCLES} cycles, ${totals.acked} acknowledged batches, ` +
        `in-flight batches found applied ${totals.inDoubtApplied} / lost ${totals.inDoubtLost}, ` +
        `${totals.checkpoints.size} checkpoints, ${totals.segments.size} WAL segments seen, ${totals.tornTailsCut} torn tails cut; ` +
        `kills during a checkpoint write ${killedDuring.checkpointWrite}, before old checkpoints were removed ${killedDuring.checkpointCleanup}, ` +
        `with several WAL segments on disk ${killedDuring.severalSegments}; ` +
        `final revision ≥ ${highestAckedRevision}`,
    );
    console.log(cycleLog.join("\n"));
  } catch (error) {
    console.error(`crash test failed with seed ${SEED}: rerun with HOMEKV_CRASH_SEED=${SEED}\n${cycleLog.join("\n")}`);
    if (live) console.error(`last server output:\n${live.output()}`);
    throw error;
  }
}, 120_000);
