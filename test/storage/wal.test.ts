import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type ErrorCode, HomeKvError } from "../../src/errors.ts";
import { readFrame } from "../../src/io/format/frame.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import type { LogEntry, WriteOp } from "../../src/storage/ops.ts";
import { WAL_SEGMENTS } from "../../src/storage/wal/wal-format.ts";
import { replayWal, type WalReplay } from "../../src/storage/wal/wal-reader.ts";
import { openWal, type Wal, type WalOptions } from "../../src/storage/wal/wal-writer.ts";
import { rejection, rejectionMessage } from "../helpers/rejection.ts";
import { del, frameStarts, interceptWrites, put } from "../helpers/storage.ts";
import { waitFor } from "../helpers/wait.ts";

/** The writes of a batch entry (every entry these tests write is a batch). */
const opsOf = (entry: LogEntry) => ("ops" in entry ? entry.ops : []);

const DIR = "/data/wal";
const segmentPath = (firstRevision: number) => `${DIR}/${WAL_SEGMENTS.fileName(firstRevision)}`;

interface Harness {
  fs: MemoryFileSystem;
  wal: Wal<number>;
  /** Every entry handed to apply by this WAL, in the order it was applied. */
  applied: LogEntry[];
  /** How many syncs of a WAL file the WAL has started (counted as it calls them, finished or not). */
  syncsStarted: () => number;
}

async function replayAll(fs: MemoryFileSystem, afterRevision = 0): Promise<{ entries: LogEntry[]; replay: WalReplay }> {
  const entries: LogEntry[] = [];
  const replay = await replayWal({ fs, dir: DIR, afterRevision, apply: (entry) => entries.push(entry) });
  return { entries, replay };
}

/** Replays what is on disk, then opens the WAL after it, as a start does. */
async function openHarness(fs = new MemoryFileSystem(), options: Partial<WalOptions<number>> = {}): Promise<Harness> {
  await fs.mkdirp(DIR);
  const { replay } = await replayAll(fs);
  const applied: LogEntry[] = [];
  let syncsStarted = 0;
  const wal = await openWal<number>({
    fs: interceptWrites(fs, (call, run) => {
      if (call === "sync") syncsStarted++;
      return run();
    }),
    dir: DIR,
    segments: replay.segments,
    lastRevision: replay.lastRevision,
    fsync: "always",
    segmentBytesMax: 1 << 20,
    pendingMax: 10_000,
    groupEntriesMax: 4_096,
    apply: (entry) => {
      applied.push(entry);
      return entry.revision;
    },
    ...options,
  });
  return { fs, wal, applied, syncsStarted: () => syncsStarted };
}

async function segmentNames(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.list(DIR)).filter((name) => WAL_SEGMENTS.parseFileName(name) !== undefined).sort();
}

async function expectHomeKvError(
  promise: Promise<unknown>,
  code: ErrorCode,
  message?: RegExp | string,
): Promise<HomeKvError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe(code);
  if (message !== undefined) expect((error as HomeKvError).message).toMatch(message);
  return error as HomeKvError;
}

const SAMPLE_BATCHES: WriteOp[][] = [
  [put("a", "1")],
  [put("empty", ""), put("b", "2")],
  [del("a")],
  [put("ключ", "значение"), put("🔑", "🗝️"), put("日本語のキー", "値")],
  [del("never-written"), put("x", "y".repeat(1000))],
  [{ key: "binary", value: new Uint8Array([0, 255, 0, 128]) }],
  [],
];

describe("write and replay", () => {
  test("batches proposed to the WAL replay back exactly: contiguous revisions, same ops (empty values, deletes, multi-byte UTF-8 keys)", async () => {
    const { fs, wal, applied } = await openHarness();
    const results: number[] = [];
    for (const ops of SAMPLE_BATCHES) results.push(await wal.propose({ ops: ops }));
    expect(results).toEqual(SAMPLE_BATCHES.map((_, i) => i + 1));
    expect(applied).toEqual(SAMPLE_BATCHES.map((ops, i) => ({ revision: i + 1, ops })));
    await wal.close();

    const { entries, replay } = await replayAll(fs);
    expect(entries).toEqual(SAMPLE_BATCHES.map((ops, i) => ({ revision: i + 1, ops })));
    expect(replay.lastRevision).toBe(SAMPLE_BATCHES.length);
    expect(replay.tornBytes).toBe(0);
    // An empty value stays an empty value, distinct from a delete.
    expect(opsOf(entries[1]!)[0]!.value).toEqual(new Uint8Array(0));
    expect(opsOf(entries[2]!)[0]!.value).toBeNull();
  });

  test("replay hands only the batches after `afterRevision` to apply, and reports the last revision", async () => {
    const { fs, wal } = await openHarness();
    for (const ops of SAMPLE_BATCHES) await wal.propose({ ops: ops });
    const { entries, replay } = await replayAll(fs, 4);
    expect(entries.map((e) => e.revision)).toEqual([5, 6, 7]);
    expect(replay.lastRevision).toBe(7);
    // A checkpoint newer than everything in the log: nothing to apply, and the checkpoint's revision is the last.
    const after = await replayAll(fs, 20);
    expect(after.entries).toEqual([]);
    expect(after.replay.lastRevision).toBe(20);
  });

  test("a reopened WAL continues at the next revision, and replay sees both runs as one log", async () => {
    const fs = new MemoryFileSystem();
    const first = await openHarness(fs);
    await first.wal.propose({ ops: [put("a", "1")] });
    await first.wal.propose({ ops: [put("b", "2")] });
    await first.wal.close();
    const second = await openHarness(fs);
    expect(second.wal.lastRevision).toBe(2);
    expect(await second.wal.propose({ ops: [put("c", "3")] })).toBe(3);
    await second.wal.close();
    expect((await replayAll(fs)).entries.map((e) => [e.revision, opsOf(e)[0]!.key])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "c"],
    ]);
  });

  test("random batches proposed in random concurrent waves replay exactly as they were applied", async () => {
    const op = fc.record({
      key: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }),
      value: fc.option(fc.uint8Array({ maxLength: 20 }), { nil: null }),
    });
    const batch = fc.uniqueArray(op, { maxLength: 4, selector: (o) => o.key });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(batch, { minLength: 1, maxLength: 8 }), { maxLength: 6 }),
        fc.integer({ min: 40, max: 400 }),
        async (waves, segmentBytesMax) => {
          const { fs, wal, applied } = await openHarness(new MemoryFileSystem(), { segmentBytesMax });
          for (const wave of waves) await Promise.all(wave.map((ops) => wal.propose({ ops: ops })));
          await wal.close();
          const { entries } = await replayAll(fs);
          expect(entries).toEqual(applied);
          expect(entries.map((e) => e.revision)).toEqual(entries.map((_, i) => i + 1));
          expect(entries.length).toBe(waves.flat().length);
        },
      ),
      { numRuns: 30 },
    );
  });
});

describe("segments", () => {
  test("past segmentBytesMax the WAL rolls over to new segments named by their first revision, and replay crosses them", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 120 });
    const batches = Array.from({ length: 20 }, (_, i) => [put(`key-${i}`, `value-${i}`)]);
    for (const ops of batches) await wal.propose({ ops: ops });
    const names = await segmentNames(fs);
    expect(names.length).toBeGreaterThan(3);
    expect(wal.stats().segments).toBe(names.length);

    const { entries, replay } = await replayAll(fs);
    expect(entries).toEqual(batches.map((ops, i) => ({ revision: i + 1, ops })));
    expect(replay.segments.map((s) => s.name)).toEqual(names);
    // Each segment's name is the revision of its first record, and its header says the same.
    for (const segment of replay.segments) {
      const file = fs.bytes(`${DIR}/${segment.name}`);
      const header = readFrame(file, 0);
      if (header.kind !== "frame") throw new Error("segment without a header");
      expect(WAL_SEGMENTS.decodeHeader(header.payload)).toBe(segment.firstRevision);
      expect(segment.bytes).toBe(file.byteLength);
    }
    expect(wal.stats().bytes).toBe(replay.segments.reduce((sum, s) => sum + s.bytes, 0));
  });

  test("a segment missing from the middle (a gap in the revisions) stops the replay with E_CORRUPT", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 100 });
    for (let i = 0; i < 12; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    const names = await segmentNames(fs);
    expect(names.length).toBeGreaterThanOrEqual(3);
    await fs.remove(`${DIR}/${names[1]}`);
    const error = await expectHomeKvError(replayAll(fs), "E_CORRUPT", /missing/);
    expect(error.message).toContain(`${DIR}/${names[2]}`);
  });

  test("a segment whose header names another revision than its file name is E_CORRUPT", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 100 });
    for (let i = 0; i < 6; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    const names = await segmentNames(fs);
    const last = names.at(-1)!;
    const renamed = WAL_SEGMENTS.fileName(WAL_SEGMENTS.parseFileName(last)! - 1);
    await fs.rename(`${DIR}/${last}`, `${DIR}/${renamed}`);
    await expectHomeKvError(replayAll(fs), "E_CORRUPT", /header says first revision/);
  });

  test("dropCovered(revision) removes exactly the segments whose successor starts at or before revision + 1, never the last", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 90 });
    for (let i = 0; i < 15; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    const firsts = (await segmentNames(fs)).map((name) => WAL_SEGMENTS.parseFileName(name)!);
    expect(firsts.length).toBeGreaterThanOrEqual(4);
    // Some segments must hold more than one record, or "covered" could not be told from "older".
    expect(firsts.some((first, i) => i > 0 && first - firsts[i - 1]! > 1)).toBe(true);

    for (let revision = 0; revision <= 20; revision++) {
      await wal.dropCovered(revision);
      const expected = firsts.filter((_, i) => i === firsts.length - 1 || firsts[i + 1]! > revision + 1);
      const left = (await segmentNames(fs)).map((name) => WAL_SEGMENTS.parseFileName(name)!);
      expect({ revision, left }).toEqual({ revision, left: expected });
      expect(wal.stats().segments).toBe(expected.length);
      // What is left replays every revision after the checkpoint.
      const { entries } = await replayAll(fs, Math.min(revision, 15));
      expect(entries.map((e) => e.revision)).toEqual(
        Array.from({ length: 15 - Math.min(revision, 15) }, (_, i) => Math.min(revision, 15) + 1 + i),
      );
    }
    expect(await wal.propose({ ops: [put("after", "drop")] })).toBe(16);
  });

  test("a removal that fails keeps its segment listed: the next dropCovered removes it first, never leaving a hole", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 90 });
    for (let i = 0; i < 15; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    const before = await segmentNames(fs);
    fs.injectFault({ op: "remove", code: "EIO", times: 1 });
    expect(await rejectionMessage(wal.dropCovered(6))).toMatch(/EIO/);
    expect(await segmentNames(fs)).toEqual(before);
    expect(wal.stats().segments).toBe(before.length);
    // Were the first segment forgotten, this call would remove the next ones and leave it behind a gap.
    await wal.dropCovered(15);
    expect(await segmentNames(fs)).toEqual(before.slice(-1));
    const { entries } = await replayAll(fs, 15);
    expect(entries).toEqual([]);
  });

  test("overlapping dropCovered calls (one flush's cut still running when the next flush's starts) leave no hole", async () => {
    const { fs, wal } = await openHarness(new MemoryFileSystem(), { segmentBytesMax: 90 });
    for (let i = 0; i < 15; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    const firsts = (await segmentNames(fs)).map((name) => WAL_SEGMENTS.parseFileName(name)!);
    expect(firsts.length).toBeGreaterThanOrEqual(4);
    // The first call covers one segment, the second more: both find the oldest one first.
    const first = firsts[1]! - 1;
    const second = firsts.at(-2)! + 1;
    await Promise.all([wal.dropCovered(first), wal.dropCovered(second)]);
    const expected = firsts.filter((_, i) => i === firsts.length - 1 || firsts[i + 1]! > second + 1);
    expect((await segmentNames(fs)).map((name) => WAL_SEGMENTS.parseFileName(name)!)).toEqual(expected);
    expect(wal.stats().segments).toBe(expected.length);
    const { entries } = await replayAll(fs, second);
    expect(entries.map((e) => e.revision)).toEqual(Array.from({ length: 15 - second }, (_, i) => second + 1 + i));
  });
});

describe("group commit", () => {
  test("100 concurrent proposes with fsync always share a handful of fsyncs and resolve in revision order with the apply results", async () => {
    const { wal, applied } = await openHarness();
    const fsyncsBefore = wal.stats().fsyncs;
    const order: number[] = [];
    const promises = Array.from({ length: 100 }, (_, i) =>
      wal.propose({ ops: [put(`k${i}`, `v${i}`)] }).then((revision) => {
        order.push(revision);
        return revision;
      }),
    );
    const results = await Promise.all(promises);
    expect(results).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(order).toEqual(results);
    expect(applied.map((e) => opsOf(e)[0]!.key)).toEqual(Array.from({ length: 100 }, (_, i) => `k${i}`));
    const fsyncs = wal.stats().fsyncs - fsyncsBefore;
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThanOrEqual(5);
    expect(wal.stats().entries).toBe(100);
  });

  test("groupEntriesMax bounds how many batches one write carries", async () => {
    const { wal } = await openHarness(new MemoryFileSystem(), { groupEntriesMax: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => wal.propose({ ops: [put(`k${i}`, "v")] })));
    // At least 100 / 10 groups, each with its own fsync.
    expect(wal.stats().fsyncs).toBeGreaterThanOrEqual(10);
  });

  test("with fsync always, a propose resolves only after its sync completed", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied, syncsStarted } = await openHarness(fs);
    const syncsAtOpen = syncsStarted();
    const release = fs.holdSyncs();
    let resolved = false;
    const promise = wal.propose({ ops: [put("a", "1")] }).then((revision) => {
      resolved = true;
      return revision;
    });
    await waitFor(() => syncsStarted() > syncsAtOpen, { what: "the WAL to start the sync of its write" });
    expect(resolved).toBe(false);
    expect(applied).toEqual([]); // not visible before it is durable
    release();
    expect(await promise).toBe(1);
    fs.crash();
    expect((await replayAll(fs)).entries.map((e) => e.revision)).toEqual([1]);
  });

  test("pendingMax: while a sync hangs, pendingMax batches queue and the next one is refused with E_UNAVAILABLE", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied, syncsStarted } = await openHarness(fs, { pendingMax: 3 });
    const syncsAtOpen = syncsStarted();
    const release = fs.holdSyncs();
    const inFlight = wal.propose({ ops: [put("in-flight", "1")] });
    await waitFor(() => syncsStarted() > syncsAtOpen, { what: "the WAL to start the sync of its write" });
    const queued = [2, 3, 4].map((i) => wal.propose({ ops: [put(`queued-${i}`, "v")] }));
    await expectHomeKvError(
      wal.propose({ ops: [put("refused", "v")] }),
      "E_UNAVAILABLE",
      /3 writes are already waiting/,
    );
    expect(applied).toEqual([]);
    release();
    expect(await Promise.all([inFlight, ...queued])).toEqual([1, 2, 3, 4]);
    expect(applied.map((e) => opsOf(e)[0]!.key)).toEqual(["in-flight", "queued-2", "queued-3", "queued-4"]);
    // Room again once the queue drained.
    expect(await wal.propose({ ops: [put("later", "v")] })).toBe(5);
  });
});

describe("torn tail", () => {
  test("cut at every offset inside the last record: replay keeps the earlier records, reports the torn bytes, truncates, and the log continues at the right revision", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs);
    const batches = [
      [put("a", "1")],
      [put("b", "2"), del("a")],
      [put("ключ", "значение")],
      [put("last", "a longer value in the last record")],
    ];
    const path = segmentPath(1);
    let lastStart = 0;
    for (const ops of batches) {
      lastStart = fs.bytes(path).byteLength;
      await wal.propose({ ops: ops });
    }
    await wal.close();
    const full = fs.bytes(path).slice();
    const earlier = batches.slice(0, -1).map((ops, i) => ({ revision: i + 1, ops }));

    for (let cut = lastStart; cut < full.byteLength; cut++) {
      fs.overwrite(path, full.subarray(0, cut));
      const { entries, replay } = await replayAll(fs);
      expect({ cut, entries }).toEqual({ cut, entries: earlier });
      expect({ cut, tornBytes: replay.tornBytes }).toEqual({ cut, tornBytes: cut - lastStart });
      expect(replay.lastRevision).toBe(3);
      expect(fs.bytes(path).byteLength).toBe(lastStart);

      const reopened = await openHarness(fs);
      expect(await reopened.wal.propose({ ops: [put("again", `${cut}`)] })).toBe(4);
      await reopened.wal.close();
      const after = await replayAll(fs);
      expect(after.entries).toEqual([...earlier, { revision: 4, ops: [put("again", `${cut}`)] }]);
      expect(after.replay.tornBytes).toBe(0);
    }
  });

  test("zeros at the end of the last segment (extended, never written) are cut like a torn write", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs);
    await wal.propose({ ops: [put("a", "1")] });
    await wal.close();
    const path = segmentPath(1);
    const full = fs.bytes(path);
    const padded = new Uint8Array(full.byteLength + 100);
    padded.set(full);
    fs.overwrite(path, padded);
    const { entries, replay } = await replayAll(fs);
    expect(entries.map((e) => e.revision)).toEqual([1]);
    expect(replay.tornBytes).toBe(100);
    expect(fs.bytes(path).byteLength).toBe(full.byteLength);
  });

  test("a last segment whose header was cut short is removed, and the log continues in a fresh segment", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs, { segmentBytesMax: 100 });
    for (let i = 0; i < 8; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    await wal.close();
    const names = await segmentNames(fs);
    const lastName = names.at(-1)!;
    const lastFirst = WAL_SEGMENTS.parseFileName(lastName)!;
    fs.overwrite(`${DIR}/${lastName}`, fs.bytes(`${DIR}/${lastName}`).slice(0, 7));
    const { entries, replay } = await replayAll(fs);
    expect(entries.map((e) => e.revision)).toEqual(Array.from({ length: lastFirst - 1 }, (_, i) => i + 1));
    expect(replay.tornBytes).toBe(7);
    expect(await segmentNames(fs)).toEqual(names.slice(0, -1));

    const reopened = await openHarness(fs, { segmentBytesMax: 100 });
    expect(await reopened.wal.propose({ ops: [put("next", "v")] })).toBe(lastFirst);
    await reopened.wal.close();
    expect((await replayAll(fs)).entries.map((e) => e.revision)).toEqual(
      Array.from({ length: lastFirst }, (_, i) => i + 1),
    );
  });

  test("a torn write is tolerated only at the end: a segment cut short that is followed by another segment is E_CORRUPT", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs, { segmentBytesMax: 100 });
    for (let i = 0; i < 8; i++) await wal.propose({ ops: [put(`k${i}`, `v${i}`)] });
    await wal.close();
    const [first] = await segmentNames(fs);
    const path = `${DIR}/${first}`;
    const full = fs.bytes(path);
    fs.overwrite(path, full.slice(0, full.byteLength - 3));
    const error = await expectHomeKvError(replayAll(fs), "E_CORRUPT");
    expect(error.message).toContain(path);
  });
});

describe("damage", () => {
  test("a flipped byte anywhere in the middle record of a segment is E_CORRUPT naming the file and the record's byte offset", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs);
    for (const ops of [[put("a", "1")], [put("middle", "record"), del("a")], [put("c", "3")]])
      await wal.propose({ ops: ops });
    await wal.close();
    const path = segmentPath(1);
    const full = fs.bytes(path).slice();
    const starts = frameStarts(full); // header, record 1, record 2, record 3, end
    expect(starts.length).toBe(5);
    const [middleStart, middleEnd] = [starts[2]!, starts[3]!];

    for (let at = middleStart; at < middleEnd; at++) {
      const damaged = full.slice();
      damaged[at]! ^= 0x40;
      fs.overwrite(path, damaged);
      const error = await expectHomeKvError(replayAll(fs), "E_CORRUPT");
      expect(error.message).toContain(path);
      expect(error.message).toContain(`byte offset ${middleStart}`);
      // The file is left as it was for the operator: nothing is cut.
      expect(fs.bytes(path)).toEqual(damaged);
    }
  });

  test("a damaged segment header is E_CORRUPT when records follow it", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs);
    await wal.propose({ ops: [put("a", "1")] });
    await wal.close();
    const path = segmentPath(1);
    const damaged = fs.bytes(path).slice();
    damaged[14]! ^= 0x01; // inside the magic
    fs.overwrite(path, damaged);
    const error = await expectHomeKvError(replayAll(fs), "E_CORRUPT", /byte offset 0/);
    expect(error.message).toContain(path);
  });
});

describe("disk errors", () => {
  test("ENOSPC: the propose rejects with E_DISK (disk full), is not applied, the file is cut back, and after space is freed the next propose takes the next revision", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied } = await openHarness(fs);
    await wal.propose({ ops: [put("a", "1")] });
    await wal.propose({ ops: [put("b", "2")] });
    const path = segmentPath(1);
    const before = fs.bytes(path).byteLength;

    fs.setCapacity(before + 10);
    await expectHomeKvError(wal.propose({ ops: [put("c", "a value that does not fit")] }), "E_DISK", /disk is full/);
    expect(applied.map((e) => e.revision)).toEqual([1, 2]);
    expect(fs.bytes(path).byteLength).toBe(before);
    expect(wal.lastRevision).toBe(2);
    expect((await replayAll(fs)).entries.map((e) => e.revision)).toEqual([1, 2]);

    fs.setCapacity(undefined);
    expect(await wal.propose({ ops: [put("d", "4")] })).toBe(3);
    const { entries } = await replayAll(fs);
    expect(entries.map((e) => [e.revision, opsOf(e)[0]!.key])).toEqual([
      [1, "a"],
      [2, "b"],
      [3, "d"],
    ]);
  });

  test("ENOSPC fails the whole group that did not fit, and only that group", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied, syncsStarted } = await openHarness(fs);
    await wal.propose({ ops: [put("a", "1")] });
    const syncsBefore = syncsStarted();
    const release = fs.holdSyncs();
    const first = wal.propose({ ops: [put("b", "2")] }); // in flight: its sync hangs
    await waitFor(() => syncsStarted() > syncsBefore, { what: "the WAL to start the sync of the second write" });
    const group = [wal.propose({ ops: [put("c", "3")] }), wal.propose({ ops: [put("d", "4")] })];
    fs.setCapacity(fs.bytes(segmentPath(1)).byteLength + 5);
    release();
    expect(await first).toBe(2);
    for (const promise of group) await expectHomeKvError(promise, "E_DISK", /disk is full/);
    expect(applied.map((e) => e.revision)).toEqual([1, 2]);
    fs.setCapacity(undefined);
    expect(await wal.propose({ ops: [put("e", "5")] })).toBe(3);
    expect((await replayAll(fs)).entries.map((e) => opsOf(e)[0]!.key)).toEqual(["a", "b", "e"]);
  });

  test("ENOSPC while rolling over to a new segment rejects with E_DISK, and after space is freed the log continues without a hole", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied } = await openHarness(fs, { segmentBytesMax: 60 });
    await wal.propose({ ops: [put("a", "a value long enough to fill the segment")] });
    expect(fs.bytes(segmentPath(1)).byteLength).toBeGreaterThanOrEqual(60);
    // Room for a little, not for a new segment's header frame (27 bytes).
    fs.setCapacity(fs.bytes(segmentPath(1)).byteLength + 10);
    await expectHomeKvError(wal.propose({ ops: [put("b", "2")] }), "E_DISK", /disk is full/);
    expect(applied.map((e) => e.revision)).toEqual([1]);

    fs.setCapacity(undefined);
    expect(await wal.propose({ ops: [put("c", "3")] })).toBe(2);
    await wal.close();
    expect((await replayAll(fs)).entries.map((e) => [e.revision, opsOf(e)[0]!.key])).toEqual([
      [1, "a"],
      [2, "c"],
    ]);
  });

  test("an EIO on sync rejects with E_DISK, and every later propose is refused until a restart", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied } = await openHarness(fs);
    await wal.propose({ ops: [put("a", "1")] });
    fs.injectFault({ op: "sync", code: "EIO", pathIncludes: ".wal", times: 1 });
    await expectHomeKvError(wal.propose({ ops: [put("b", "2")] }), "E_DISK", /EIO/);
    // The fault is gone, but after a failed fsync nothing written since the last good one can be trusted.
    await expectHomeKvError(wal.propose({ ops: [put("c", "3")] }), "E_DISK", /restart/);
    await expectHomeKvError(wal.propose({ ops: [put("d", "4")] }), "E_DISK");
    expect(applied.map((e) => e.revision)).toEqual([1]);
    await wal.close();

    const restarted = await openHarness(fs);
    const next = await restarted.wal.propose({ ops: [put("e", "5")] });
    expect(next).toBe(restarted.wal.lastRevision);
    const { entries } = await replayAll(fs);
    expect(entries.map((e) => e.revision)).toEqual(entries.map((_, i) => i + 1));
    expect(opsOf(entries.at(-1)!)[0]!.key).toBe("e");
  });

  test("an EIO on sync also fails the batches queued behind the failed group", async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied } = await openHarness(fs);
    fs.injectFault({ op: "sync", code: "EIO", pathIncludes: ".wal" });
    const promises = Array.from({ length: 5 }, (_, i) => wal.propose({ ops: [put(`k${i}`, "v")] }));
    for (const promise of promises) await expectHomeKvError(promise, "E_DISK");
    expect(applied).toEqual([]);
  });
});

describe("fsync modes", () => {
  test('fsync "never" acknowledges without syncing: a crash loses the writes, a clean close keeps them', async () => {
    const fs = new MemoryFileSystem();
    const { wal, applied } = await openHarness(fs, { fsync: "never" });
    const fsyncsAtOpen = wal.stats().fsyncs;
    expect(await wal.propose({ ops: [put("a", "1")] })).toBe(1);
    expect(await wal.propose({ ops: [put("b", "2")] })).toBe(2);
    expect(applied.length).toBe(2);
    expect(wal.stats().fsyncs).toBe(fsyncsAtOpen);
    fs.crash();
    expect((await replayAll(fs)).entries).toEqual([]);

    const fs2 = new MemoryFileSystem();
    const second = await openHarness(fs2, { fsync: "never" });
    await second.wal.propose({ ops: [put("a", "1")] });
    await second.wal.close();
    fs2.crash();
    expect((await replayAll(fs2)).entries.map((e) => e.revision)).toEqual([1]);
  });

  test('fsync "everysec" acknowledges without syncing, and the tick syncs what was written', async () => {
    const fs = new MemoryFileSystem();
    let tick: (() => void) | undefined;
    let stopped = false;
    const { wal, syncsStarted } = await openHarness(fs, {
      fsync: "everysec",
      everySecond: (run) => {
        tick = run;
        return () => {
          stopped = true;
        };
      },
    });
    expect(tick).toBeDefined();
    const fsyncsAtOpen = wal.stats().fsyncs;
    await wal.propose({ ops: [put("a", "1")] });
    await wal.propose({ ops: [put("b", "2")] });
    expect(wal.stats().fsyncs).toBe(fsyncsAtOpen);

    const syncsBefore = syncsStarted();
    tick!();
    expect(syncsStarted()).toBe(syncsBefore + 1); // a tick starts its sync at once, in its own turn
    await waitFor(() => wal.stats().fsyncs === fsyncsAtOpen + 1, { what: "the tick's sync to complete" });
    // Nothing new: the next tick does not sync (it would have started one at once, as the first did).
    tick!();
    expect(syncsStarted()).toBe(syncsBefore + 1);
    expect(wal.stats().fsyncs).toBe(fsyncsAtOpen + 1);

    await wal.propose({ ops: [put("c", "3")] });
    fs.crash();
    expect((await replayAll(fs)).entries.map((e) => e.revision)).toEqual([1, 2]);
    await wal.close();
    expect(stopped).toBe(true);
  });

  test.each(["tick", "close"] as const)(
    'fsync "everysec": a write that lands while a tick\'s sync is in flight is made durable by the next %s',
    async (finish) => {
      const fs = new MemoryFileSystem();
      let tick: () => void = () => {};
      const { wal, syncsStarted } = await openHarness(fs, {
        fsync: "everysec",
        everySecond: (run) => {
          tick = run;
          return () => {};
        },
      });
      await wal.propose({ ops: [put("a", "1")] });
      const [syncsBefore, fsyncsBefore] = [syncsStarted(), wal.stats().fsyncs];
      const release = fs.holdSyncs();
      tick(); // a sync covering "a" starts, and takes a while
      expect(syncsStarted()).toBe(syncsBefore + 1);
      expect(await wal.propose({ ops: [put("b", "2")] })).toBe(2); // written after that sync began
      release();
      await waitFor(() => wal.stats().fsyncs === fsyncsBefore + 1, { what: "the held sync to complete" });
      if (finish === "tick") {
        tick();
        await waitFor(() => wal.stats().fsyncs === fsyncsBefore + 2, { what: "the next tick's sync to complete" });
      } else {
        await wal.close();
      }
      fs.crash();
      expect((await replayAll(fs)).entries.map((e) => e.revision)).toEqual([1, 2]);
    },
  );
});

describe("lifecycle", () => {
  test("propose after close is refused with E_UNAVAILABLE, and close is idempotent", async () => {
    const { wal } = await openHarness();
    await wal.propose({ ops: [put("a", "1")] });
    await wal.close();
    await wal.close();
    await expectHomeKvError(wal.propose({ ops: [put("b", "2")] }), "E_UNAVAILABLE");
  });

  test("close waits for the batches in flight and makes them durable", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openHarness(fs);
    const promises = Array.from({ length: 10 }, (_, i) => wal.propose({ ops: [put(`k${i}`, "v")] }));
    await wal.close();
    expect(await Promise.all(promises)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    fs.crash();
    expect((await replayAll(fs)).entries.length).toBe(10);
  });
});
