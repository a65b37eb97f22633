import { describe, expect, test } from "bun:test";
import { RaftLogEngine, type RaftLogEngineOptions } from "../../../src/cluster/raft/group-log-engine.ts";
import { GROUP_SEGMENT, GROUP_SNAPSHOT } from "../../../src/cluster/raft/group-log-format.ts";
import type { Entry } from "../../../src/cluster/raft/types.ts";
import type { AppendFile, FileSystem } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { bytes } from "../../helpers/bytes.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { frameStarts, interceptWrites, type WriteCall } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";

const DIR = "/data/raft-groups";
const FIRST = `${DIR}/${GROUP_SEGMENT.fileName(0)}`;
const entry = (index: number, term: number, text = `e${index}`): Entry => ({ index, term, data: bytes(text) });
const conf = { voters: [1, 2, 3], learners: [] };

/** A MemoryFileSystem, and the same one counting the calls that change the disk. */
function countingFs(): { memory: MemoryFileSystem; fs: FileSystem; calls: Map<WriteCall, number> } {
  const memory = new MemoryFileSystem();
  const calls = new Map<WriteCall, number>();
  const fs = interceptWrites(memory, (call, run) => {
    calls.set(call, (calls.get(call) ?? 0) + 1);
    return run();
  });
  return { memory, fs, calls };
}

/**
 * `memory` as Linux treats a failed fsync (PostgreSQL's "fsyncgate", 2018): the dirty pages it could
 * not write are marked clean, so their bytes stay readable but never reach the disk, and a later
 * fsync succeeds without them. `crash` cuts the power: each file keeps what its syncs covered, with
 * zeros where a failed sync lost bytes. (Byte ranges stand for pages: a simplification.)
 */
function pageCacheFs(memory: MemoryFileSystem): { fs: FileSystem; crash: () => void } {
  const lost = new Map<string, { from: number; to: number }[]>();
  const ranges = (path: string) => lost.get(path) ?? lost.set(path, []).get(path)!;
  const openAppend = async (path: string): Promise<AppendFile> => {
    const file = await memory.openAppend(path);
    let synced = file.size;
    return {
      get size() {
        return file.size;
      },
      append: (data) => file.append(data),
      async sync() {
        const covers = file.size;
        try {
          await file.sync();
          synced = covers;
        } catch (error) {
          ranges(path).push({ from: synced, to: covers });
          throw error;
        }
      },
      async truncate(size) {
        await file.truncate(size);
        synced = Math.min(synced, size);
        for (const range of ranges(path)) range.to = Math.min(range.to, size);
      },
      close: () => file.close(),
    };
  };
  const fs = new Proxy(memory, {
    get(target, name) {
      if (name === "openAppend") return openAppend;
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    fs,
    crash() {
      memory.crash();
      for (const [path, held] of lost) for (const { from, to } of held) memory.bytes(path).fill(0, from, to);
    },
  };
}

/** Each group's entries, snapshot index and hard state, as a reopen reads them. */
async function contents(fs: FileSystem, options?: RaftLogEngineOptions) {
  const engine = await RaftLogEngine.open(fs, DIR, undefined, options);
  const held = engine.groups().sort((a, b) => a - b);
  return held.map((id) => {
    const log = engine.group(id);
    return {
      id,
      snapshot: log.snapshot().index,
      entries: log.entries(log.firstIndex(), log.lastIndex() + 1).map((e) => `${e.index}/${e.term}`),
      hardState: log.hardState(),
    };
  });
}

describe("RaftLogEngine", () => {
  test("N groups persisting in one turn cause one sync, and none resolves before it", async () => {
    const { memory, fs, calls } = countingFs();
    const engine = await RaftLogEngine.open(fs, DIR);
    calls.clear();
    const release = memory.holdSyncs();
    const resolved: number[] = [];
    const groups = Array.from({ length: 64 }, (_, i) => i + 1);
    const writes = groups.map((id) =>
      engine
        .group(id)
        .persist({ term: 1, vote: id, commit: 0 }, [entry(1, 1)])
        .then(() => resolved.push(id)),
    );
    await waitFor(() => memory.syncsWaiting > 0, { what: "the batch's sync to start", intervalMs: 1 });
    expect({ syncs: calls.get("sync"), appends: calls.get("append"), resolved: resolved.length }).toEqual({
      syncs: 1,
      appends: 1,
      resolved: 0,
    });
    release();
    await Promise.all(writes);
    expect(calls.get("sync")).toBe(1);
    expect((await contents(memory)).map((g) => g.hardState.vote)).toEqual(groups);
  });

  test("writes made while a sync runs go in the next one; unsynced ones ride along and cause none", async () => {
    const { memory, fs, calls } = countingFs();
    const engine = await RaftLogEngine.open(fs, DIR);
    calls.clear();
    const release = memory.holdSyncs();
    const first = [1, 2, 3].map((id) => engine.group(id).persist(undefined, [entry(1, 1)]));
    await waitFor(() => memory.syncsWaiting > 0, { what: "the first batch's sync to start", intervalMs: 1 });
    const second = [4, 5, 6].map((id) => engine.group(id).persist(undefined, [entry(1, 1)]));
    const unsynced = engine.group(9).persist({ term: 1, vote: 0, commit: 1 }, [], false);
    release();
    await Promise.all([...first, ...second, unsynced]);
    // The second wave and group 9's unsynced hard state went out together, after the first wave's sync.
    expect({ syncs: calls.get("sync"), appends: calls.get("append") }).toEqual({ syncs: 2, appends: 2 });
    await Promise.all([7, 8].map((id) => engine.group(id).persist({ term: 2, vote: 0, commit: 0 }, [], false)));
    expect({ syncs: calls.get("sync"), appends: calls.get("append") }).toEqual({ syncs: 2, appends: 3 });
  });

  test("after a failed sync no write is acknowledged until a reopen: the kernel may have dropped what that sync was to write, and the engine's later records would follow a hole", async () => {
    const memory = new MemoryFileSystem();
    const disk = pageCacheFs(memory);
    const engine = await RaftLogEngine.open(disk.fs, DIR);
    await engine.group(1).persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    // Only the commit moved (a Ready that needs no sync): written, left for a later sync.
    await engine.group(1).persist({ term: 1, vote: 1, commit: 1 }, [], false);
    memory.injectFault({ op: "sync", code: "EIO", times: 1 });
    expect(await rejectionMessage(engine.group(2).persist({ term: 1, vote: 2, commit: 0 }, [entry(1, 1)]))).toMatch(
      "EIO",
    );
    // Another group's write, once the disk answers again.
    const acknowledged = await engine
      .group(3)
      .persist({ term: 1, vote: 3, commit: 0 }, [entry(1, 1)])
      .then(
        () => true,
        () => false,
      );
    disk.crash();
    const held = await contents(memory).catch((error: Error) => error.message);
    const group = (id: number) => ({ id, snapshot: 0, entries: ["1/1"], hardState: { term: 1, vote: id, commit: 0 } });
    // Whatever was acknowledged is there after the crash, and the log opens.
    expect({ acknowledged, held }).toEqual({ acknowledged, held: acknowledged ? [group(1), group(3)] : [group(1)] });
    expect(acknowledged).toBe(false);
  });

  test("a torn last record is cut off and said so; the groups' records before it are kept", async () => {
    const fs = new MemoryFileSystem();
    const engine = await RaftLogEngine.open(fs, DIR);
    await Promise.all([1, 2].map((id) => engine.group(id).persist({ term: 1, vote: id, commit: 0 }, [entry(1, 1)])));
    const whole = fs.bytes(FIRST).byteLength;
    await engine.group(2).persist(undefined, [entry(2, 1, "y".repeat(100))]);
    fs.overwrite(FIRST, fs.bytes(FIRST).subarray(0, whole + 40));
    const lines: string[] = [];
    const reopened = await RaftLogEngine.open(fs, DIR, (line) => lines.push(line));
    expect(lines).toEqual([expect.stringContaining(`${FIRST}: cut 40 bytes of a torn last record`)]);
    expect([reopened.group(1).lastIndex(), reopened.group(2).lastIndex()]).toEqual([1, 1]);
    // The file was cut back: the next record follows good data.
    await reopened.group(2).persist(undefined, [entry(2, 1, "z")]);
    expect((await contents(fs)).map((g) => g.entries)).toEqual([["1/1"], ["1/1", "2/1"]]);
  });

  test("a flipped byte before the end stops the open, naming the file and the offset", async () => {
    const fs = new MemoryFileSystem();
    const engine = await RaftLogEngine.open(fs, DIR);
    for (const id of [1, 2, 3]) await engine.group(id).persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    const starts = frameStarts(fs.bytes(FIRST));
    const damaged = fs.bytes(FIRST).slice();
    damaged[starts[2]! + 20]! ^= 0xff; // inside group 1's hard state record, the second of its three
    fs.overwrite(FIRST, damaged);
    expect(await rejectionMessage(RaftLogEngine.open(fs, DIR))).toMatch(
      `${FIRST} is damaged at byte offset ${starts[2]}`,
    );
  });

  test("a quiet group does not pin old segments: each rotation restates its hard state and snapshot", async () => {
    const fs = new MemoryFileSystem();
    const options = { segmentBytesMax: 1_000, snapshotInlineBytesMax: 8 };
    const engine = await RaftLogEngine.open(fs, DIR, undefined, options);
    const quiet = engine.group(1);
    await quiet.persist({ term: 3, vote: 1, commit: 2 }, [entry(1, 3), entry(2, 3)]);
    await quiet.compact(2, bytes("a snapshot too large to sit in the log"), conf);
    const busy = engine.group(2);
    for (let i = 1; i <= 200; i++) {
      await busy.persist({ term: 1, vote: 2, commit: i - 1 }, [entry(i, 1, "x".repeat(50))]);
      if (i % 20 === 0) await busy.compact(i - 5, bytes("s"), conf);
    }
    const segments = (await fs.list(DIR)).flatMap((name) => GROUP_SEGMENT.parseFileName(name) ?? []);
    // About 17 segments were written: those left hold the entries after the busy group's last
    // compactions, and segment 0, where the quiet group's records are, is gone.
    expect(Math.min(...segments)).toBeGreaterThan(0);
    expect(segments.length).toBeLessThanOrEqual(6);
    fs.crash();
    const reopened = await RaftLogEngine.open(fs, DIR, undefined, options);
    expect(reopened.group(1).snapshot()).toEqual({
      index: 2,
      term: 3,
      data: bytes("a snapshot too large to sit in the log"),
      conf,
    });
    expect(reopened.group(1).hardState()).toEqual({ term: 3, vote: 1, commit: 2 });
    expect([reopened.group(2).firstIndex(), reopened.group(2).lastIndex()]).toEqual([196, 200]);
  });

  test("a removed group's records never come back, though the segment of its removal goes before older ones", async () => {
    const fs = new MemoryFileSystem();
    const options = { segmentBytesMax: 300, snapshotInlineBytesMax: 8 };
    const engine = await RaftLogEngine.open(fs, DIR, undefined, options);
    // Group 1 holds entries in segment 0 that it never compacts: segment 0 stays.
    await engine.group(1).persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    await engine.group(2).persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1)]);
    await engine.group(2).compact(1, bytes("group 2's state, in a file"), conf);
    // Group 2's removal goes in a later segment.
    for (let i = 1; i <= 10; i++) await engine.group(3).persist(undefined, [entry(i, 1, "y".repeat(40))]);
    await engine.removeGroup(2);
    expect(engine.groups().sort()).toEqual([1, 3]);
    expect(engine.group(2).lastIndex()).toBe(0);
    // Group 3 fills segments, which it compacts away: the ones holding group 2's removal and no
    // entries still needed stay while segment 0 (group 1's entry) does.
    for (let i = 1; i <= 40; i++) await engine.group(3).persist(undefined, [entry(i, 1, "y".repeat(40))]);
    await engine.group(3).compact(40, bytes("s"), conf);
    for (let i = 41; i <= 50; i++) await engine.group(3).persist(undefined, [entry(i, 1, "y".repeat(40))]);
    const names = await fs.list(DIR);
    expect(names.filter((name) => GROUP_SNAPSHOT.parseFileName(name) !== undefined)).toEqual([]);
    expect(names.filter((name) => GROUP_SEGMENT.parseFileName(name) !== undefined).length).toBeGreaterThan(3);
    fs.crash();
    expect((await contents(fs, options)).map((g) => g.id)).toEqual([1, 3]);
  });

  test("a retired group begins again empty at the term after its last, through rotations and restarts", async () => {
    const fs = new MemoryFileSystem();
    const options = { segmentBytesMax: 300 };
    const engine = await RaftLogEngine.open(fs, DIR, undefined, options);
    await engine.group(2).persist({ term: 7, vote: 2, commit: 2 }, [entry(1, 7), entry(2, 7)]);
    await engine.retireGroup(2);
    // The replica placed here again: no entry, no vote, and a term past every one it voted in.
    expect(engine.group(2).hardState()).toEqual({ term: 8, vote: 0, commit: 0 });
    expect(engine.group(2).lastIndex()).toBe(0);
    const tombstone = { id: 2, snapshot: 0, entries: [], hardState: { term: 8, vote: 0, commit: 0 } };
    // Replayed from the removal record itself.
    expect((await contents(fs, options)).find((group) => group.id === 2)).toEqual(tombstone);
    // Another group fills segments and compacts them away: the tombstone is restated at each rotation.
    for (let i = 1; i <= 40; i++) await engine.group(3).persist(undefined, [entry(i, 1, "y".repeat(40))]);
    await engine.group(3).compact(40, bytes("s"), conf);
    await engine.group(3).persist(undefined, [entry(41, 1, "y".repeat(40))]);
    expect(
      Math.min(...(await fs.list(DIR)).flatMap((name) => GROUP_SEGMENT.parseFileName(name) ?? [])),
    ).toBeGreaterThan(0);
    fs.crash();
    expect((await contents(fs, options)).find((group) => group.id === 2)).toEqual(tombstone);
  });

  test("a retired group's tombstone is restated by a rotation that follows its removal at once", async () => {
    const fs = new MemoryFileSystem();
    const setup = await RaftLogEngine.open(fs, DIR);
    await setup.group(2).persist({ term: 7, vote: 2, commit: 2 }, [entry(1, 7), entry(2, 7)]);
    // Group 3 has compacted all it wrote: once group 2 is gone, no group needs the first segment.
    await setup.group(3).persist(undefined, [entry(1, 1)]);
    await setup.group(3).compact(1, bytes("s"), conf);
    await setup.close();
    // The segment fills up with the removal record: the next write rotates.
    const options = { segmentBytesMax: (await fs.readFile(FIRST)).byteLength + 1 };
    const engine = await RaftLogEngine.open(fs, DIR, undefined, options);
    const release = fs.holdSyncs();
    const retiring = engine.retireGroup(2);
    await waitFor(() => fs.syncsWaiting > 0, { what: "the removal's sync to start", intervalMs: 1 });
    // Another group's write waits for the next round of the same flush, which rotates first.
    const next = engine.group(3).persist(undefined, [entry(2, 1)]);
    release();
    await Promise.all([retiring, next]);
    // The rotation removed the first segment, and with it the removal record.
    expect(await fs.list(DIR)).not.toContain(GROUP_SEGMENT.fileName(0));
    fs.crash();
    const [retired] = (await contents(fs, options)).filter((group) => group.id === 2);
    expect(retired?.hardState).toEqual({ term: 8, vote: 0, commit: 0 });
  });

  test("a crash at any write of a rotation leaves the log as before it, and the write done leaves it after", async () => {
    const setup = new MemoryFileSystem();
    const engine = await RaftLogEngine.open(setup, DIR);
    await engine.group(1).persist({ term: 2, vote: 1, commit: 2 }, [entry(1, 2), entry(2, 2)]);
    await engine.group(1).compact(2, bytes("group 1's state, in a file"), conf);
    await engine.group(2).persist({ term: 1, vote: 2, commit: 0 }, []);
    await engine.close();
    const before = await contents(setup);
    const after = structuredClone(before);
    after[1]!.entries.push("1/1");
    // Segments of a byte: the next write rotates first (sync the segment, whose end may be
    // unsynced; a new segment restating both groups, synced; directory sync; segment 0 removed;
    // directory sync), then appends and syncs.
    const options = { segmentBytesMax: 1, snapshotInlineBytesMax: 8 };
    const outcomes: string[] = [];
    for (let cutAt = 0; cutAt < 20; cutAt++) {
      const memory = new MemoryFileSystem();
      for (const name of await setup.list(DIR)) memory.overwrite(`${DIR}/${name}`, setup.bytes(`${DIR}/${name}`));
      await memory.mkdirp(DIR);
      let left = cutAt;
      let cut: () => void = () => {};
      const cutMade = new Promise<string>((resolve) => (cut = () => resolve("cut")));
      const fs = interceptWrites(memory, (call, run) => {
        if (left-- > 0) return run();
        // The power goes at this call: it and every later one never happen.
        memory.crash();
        cut();
        outcomes.push(call);
        return new Promise(() => {});
      });
      const reopened = await RaftLogEngine.open(fs, DIR, undefined, options);
      const write = reopened.group(2).persist(undefined, [entry(1, 1)]);
      if ((await Promise.race([write.then(() => "done"), cutMade])) === "done") {
        memory.crash();
        expect(await contents(memory, options)).toEqual(after);
        break;
      }
      expect({ cutAt, found: await contents(memory, options) }).toEqual({ cutAt, found: before });
    }
    expect(outcomes).toEqual(["sync", "truncate", "append", "sync", "syncDir", "remove", "syncDir", "append", "sync"]);
  });
});
