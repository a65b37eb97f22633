import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { ByteWriter } from "../../src/io/format/bytes.ts";
import { encodeFrame } from "../../src/io/format/frame.ts";
import type { FileSystem } from "../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { CHECKPOINT_FILES, encodeChainsFrame, encodeEndFrame } from "../../src/storage/checkpoint/checkpoint-format.ts";
import { listCheckpoints, loadNewestCheckpoint } from "../../src/storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../src/storage/checkpoint/checkpoint-writer.ts";
import { createMvccStore, type KeyChain, type MvccStore } from "../../src/storage/mvcc/store.ts";
import type { KeyRecord, WriteOp } from "../../src/storage/ops.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { del, frameStarts, interceptWrites, put } from "../helpers/storage.ts";

const DIR = "/data/checkpoints";
const commit = (store: MvccStore, ...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops });
const liveState = (store: MvccStore, revision = store.revision): KeyRecord[] =>
  store.scan({ limit: Number.MAX_SAFE_INTEGER, visitMax: Number.MAX_SAFE_INTEGER, revision }).records;
/** A chain as the loader hands it over, copied: its values are views valid only until the next chain. */
const copyChain = ({ key, versions }: KeyChain): KeyChain => ({
  key,
  versions: versions.map((v) => ({ ...v, value: v.value?.slice() ?? null })),
});

/** Restores the newest checkpoint of `fs` into a new store: what the loader returned, the live state, the chains restored. */
async function loadNewest(fs: FileSystem) {
  const store = createMvccStore();
  const chains: KeyChain[] = [];
  const loaded = await loadNewestCheckpoint(fs, DIR, (checkpoint) => {
    chains.push(...Array.from(checkpoint.chains, copyChain));
    store.restore(checkpoint.revision, checkpoint.compactedRevision, chains);
  });
  return loaded && { ...loaded, live: liveState(store), chains };
}

/** A store with `keys` live keys written over several revisions, some overwritten, some deleted, some empty. */
function filledStore(keys: number): MvccStore {
  const store = createMvccStore();
  const names = Array.from({ length: keys + keys / 4 }, (_, i) => `key-${String(i).padStart(4, "0")}`);
  for (let i = 0; i < names.length; i += 10) commit(store, ...names.slice(i, i + 10).map((k) => put(k, `first ${k}`)));
  for (let i = 0; i < names.length; i += 3) commit(store, put(names[i]!, i % 2 ? "" : `second ${names[i]} ✓ ключ`));
  for (let i = 0; i < keys / 4; i++) commit(store, del(names[i * 5]!));
  commit(store, put("ключ-🔑", "multi-byte key"));
  return store;
}

async function newFs(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

/** A checkpoint at `revision` holding `frames` as its body (and an end frame counting `keys`). */
async function checkpointOf(revision: number, keys: number, ...frames: Uint8Array[]) {
  const fs = await newFs();
  const parts = [CHECKPOINT_FILES.encodeHeader(revision), ...frames, encodeEndFrame(keys)];
  const file = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    file.set(part, offset);
    offset += part.byteLength;
  }
  fs.overwrite(`${DIR}/${CHECKPOINT_FILES.fileName(revision)}`, file);
  return { fs, bodyStart: parts[0]!.byteLength };
}

/** The error loading the newest checkpoint ends in: always found before the restore is called, so no store is half built. */
async function loadError(fs: FileSystem): Promise<HomeKvError> {
  let restoreCalled = false;
  try {
    const loaded = await loadNewestCheckpoint(fs, DIR, () => {
      restoreCalled = true;
    });
    throw new Error(`expected E_CORRUPT, loaded ${loaded?.keys} keys`);
  } catch (error) {
    if (!(error instanceof HomeKvError)) throw error;
    expect(error.code).toBe("E_CORRUPT");
    expect(restoreCalled).toBe(false);
    return error;
  }
}

/** Delegates to a MemoryFileSystem, calling `afterAppend` after each append to a checkpoint file. */
function observedFs(inner: MemoryFileSystem, afterAppend: () => void): FileSystem {
  return {
    mkdirp: (dir) => inner.mkdirp(dir),
    list: (dir) => inner.list(dir),
    readFile: (path) => inner.readFile(path),
    openRead: (path) => inner.openRead(path),
    createExclusive: (path, data) => inner.createExclusive(path, data),
    rename: (from, to) => inner.rename(from, to),
    link: (from, to) => inner.link(from, to),
    remove: (path) => inner.remove(path),
    exists: (path) => inner.exists(path),
    removeTree: (path) => inner.removeTree(path),
    realpath: (path) => inner.realpath(path),
    syncDir: (dir) => inner.syncDir(dir),
    async openAppend(path) {
      const file = await inner.openAppend(path);
      return {
        get size() {
          return file.size;
        },
        async append(data) {
          await file.append(data);
          afterAppend();
        },
        sync: () => file.sync(),
        truncate: (size) => file.truncate(size),
        close: () => file.close(),
      };
    },
  };
}

describe("round trip", () => {
  test("writeCheckpoint then loadNewestCheckpoint gives back the live state at the revision, in key order, over many entry frames", async () => {
    const fs = await newFs();
    const store = filledStore(200);
    const expected = liveState(store);
    expect(expected.length).toBeGreaterThan(150);

    const written = await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 7 });
    expect(written).toEqual({
      revision: store.revision,
      name: CHECKPOINT_FILES.fileName(store.revision),
      entries: expected.length,
      bytes: fs.bytes(`${DIR}/${written.name}`).byteLength,
    });
    // header + meta + one frame per slice of 7 + end
    expect(frameStarts(fs.bytes(`${DIR}/${written.name}`)).length - 1).toBe(2 + Math.ceil(expected.length / 7) + 1);

    const loaded = await loadNewest(fs);
    expect(loaded).toMatchObject({
      path: `${DIR}/${written.name}`,
      revision: store.revision,
      compactedRevision: store.compactedRevision,
      keys: store.dumpChains({ limit: 10_000, revision: store.revision }).length,
      entries: expected.length,
      bytes: written.bytes,
    });
    // Empty values survive as empty values, and each key's revisions are kept.
    const restored = loaded!.live;
    expect(restored).toEqual(expected);
    expect(restored.some((e) => e.value!.byteLength === 0)).toBe(true);
    expect(new Set(restored.map((e) => e.modRevision)).size).toBeGreaterThan(3);
  });

  test("a large checkpoint is synced as it is written, not only at the end", async () => {
    // 19 MiB of values: the writer syncs every 4 MiB, so that the dirty pages of a checkpoint never
    // pile up for another file's fsync (a Raft log's, a WAL's) to wait for.
    const store = createMvccStore();
    const value = new Uint8Array(10_000).fill(1);
    for (let batch = 0; batch < 20; batch++)
      store.apply({
        revision: store.revision + 1,
        ops: Array.from({ length: 100 }, (_, i) => ({ key: `k${batch * 100 + i}`, value })),
      });
    let syncs = 0;
    const fs = interceptWrites(new MemoryFileSystem(), (call, run) => {
      if (call === "sync") syncs++;
      return run();
    });
    const written = await writeCheckpoint({ fs, dir: "/ckpt", store, sliceKeysMax: 50 });
    expect(written.bytes).toBeGreaterThan(19 * 2 ** 20);
    expect(syncs).toBeGreaterThanOrEqual(5);
  });

  test("an empty store checkpoints and loads as revision 0 with no entries", async () => {
    const fs = await newFs();
    const written = await writeCheckpoint({ fs, dir: DIR, store: createMvccStore(), sliceKeysMax: 4 });
    expect(written.entries).toBe(0);
    expect(await loadNewest(fs)).toEqual({
      path: `${DIR}/${written.name}`,
      revision: 0,
      compactedRevision: 0,
      keys: 0,
      bytes: written.bytes,
      entries: 0,
      live: [],
      chains: [],
    });
  });

  test("no checkpoint in the directory loads as undefined", async () => {
    expect(await loadNewest(await newFs())).toBeUndefined();
  });

  test("the newest of several checkpoints is the one loaded", async () => {
    const fs = await newFs();
    const store = createMvccStore();
    commit(store, put("a", "1"));
    await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
    commit(store, put("a", "2"));
    commit(store, put("b", "3"));
    await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
    expect((await listCheckpoints(fs, DIR)).map((c) => c.revision)).toEqual([3, 1]);
    const loaded = await loadNewest(fs);
    expect(loaded?.revision).toBe(3);
    expect(loaded?.live.map((e) => [e.key, text(e.value)])).toEqual([
      ["a", "2"],
      ["b", "3"],
    ]);
  });
});

describe("restored in place", () => {
  /** Keys in key order with ASCII and multi-byte ones interleaved (an ASCII key after a multi-byte one too). */
  const KEYS = ["", "a", "a\u0000", "aé", "b", "b-日本", "c", "ключ", "ключ-2", "😀", "😀z"];

  /** A store with history kept: several versions per key, tombstones, TTLs, an empty value. */
  function storeWithHistory(): MvccStore {
    const store = createMvccStore({ historyRevisions: 1_000 });
    for (const [i, key] of KEYS.entries()) commit(store, put(key, `first ${i}`));
    for (const [i, key] of KEYS.entries()) {
      if (i % 3 === 0) commit(store, del(key));
      if (i % 2 === 0) commit(store, { key, value: bytes(i % 4 ? "" : `ttl ${i}`), expiresAtMs: 1e12 + i });
    }
    return store;
  }

  /** Restores the newest checkpoint of `fs` as a memory store takes it (`inPlace`) or as objects; with the TTLs it reported. */
  async function restoreNewest(fs: FileSystem, inPlace: boolean) {
    const expiries: [string, number, number][] = [];
    const store = createMvccStore({ historyRevisions: 1_000, onExpiry: (...expiry) => expiries.push(expiry) });
    const loaded = await loadNewestCheckpoint(fs, DIR, ({ revision, compactedRevision, chains }) => {
      if (inPlace) expect(chains.cursor).toBeFunction();
      store.restore(revision, compactedRevision, inPlace ? chains : Array.from(chains, copyChain));
    });
    const dump = store.dumpChains({ limit: 1_000, revision: store.revision });
    return { loaded, dump, expiries, stats: store.stats() };
  }

  test("a checkpoint read in place gives the same store as its chains as objects: every version, tombstones, TTLs and counters, keys of any bytes", async () => {
    const fs = await newFs();
    const store = storeWithHistory();
    await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 3 });
    const expected = store.dumpChains({ limit: 1_000, revision: store.revision });
    expect(expected.map((chain) => chain.key)).toEqual(KEYS);
    expect(expected.some((chain) => chain.versions.length > 2)).toBe(true);

    const inPlace = await restoreNewest(fs, true);
    const objects = await restoreNewest(fs, false);
    expect(inPlace.dump).toEqual(expected);
    expect(objects.dump).toEqual(expected);
    expect(inPlace.loaded).toEqual(objects.loaded!);
    expect(inPlace.loaded!.entries).toBe(store.stats().keys);
    expect(inPlace.expiries).toEqual(objects.expiries);
    expect(inPlace.expiries.length).toBeGreaterThan(0);
    const { keys, valueBytes, versions } = store.stats();
    expect(inPlace.stats).toMatchObject({ keys, valueBytes, versions });
    // Reads and writes find the keys restored as bytes as they find keys put.
    const restored = createMvccStore();
    await loadNewestCheckpoint(fs, DIR, ({ revision, compactedRevision, chains }) =>
      restored.restore(revision, compactedRevision, chains),
    );
    expect(restored.readRecords(KEYS)).toEqual(store.readRecords(KEYS));
    // New keys go in their place in the key order the restore built, as in the store written.
    for (const written of [store, restored]) commit(written, put("a", "after"), put("aa", "new"), put("b-", "new"));
    expect(liveState(restored)).toEqual(liveState(store));
    expect(liveState(restored).map((record) => record.key)).toContain("aa");
  });

  test("chains out of key order, as objects, still restore; a key twice is refused", () => {
    const version = (revision: number, value: string) => ({
      revision,
      createRevision: revision,
      version: 1,
      value: bytes(value),
    });
    const store = createMvccStore();
    store.restore(3, 0, [
      { key: "b", versions: [version(1, "1")] },
      { key: "a", versions: [version(2, "2")] },
      { key: "c", versions: [version(3, "3")] },
    ]);
    expect(store.scan({ limit: 10, visitMax: 10, revision: 3 }).records.map((r) => [r.key, text(r.value)])).toEqual([
      ["a", "2"],
      ["b", "1"],
      ["c", "3"],
    ]);
    for (const keys of [
      ["a", "b", "a"],
      ["a", "a"],
    ]) {
      const twice = () =>
        createMvccStore().restore(
          3,
          0,
          keys.map((key, i) => ({ key, versions: [version(i + 1, key)] })),
        );
      expect(twice).toThrow('checkpoint holds "a" twice');
    }
  });

  test("live entries (frame type 1, as the first versions wrote them) read in place as keys of one version", async () => {
    const out = new ByteWriter(64).u8(1).u32(3);
    for (const [revision, key] of ["a", "b-é", "c"].entries())
      out
        .string(key)
        .u64(revision + 1)
        .bytes(bytes(`v${key}`));
    const { fs } = await checkpointOf(3, 3, encodeFrame(out.written()));
    const inPlace = await restoreNewest(fs, true);
    expect(inPlace.dump).toEqual((await restoreNewest(fs, false)).dump);
    expect(
      inPlace.dump.map(({ key, versions }) => [
        key,
        versions.map((v) => [v.revision, v.createRevision, v.version, text(v.value!)]),
      ]),
    ).toEqual([
      ["a", [[1, 1, 1, "va"]]],
      ["b-é", [[2, 2, 1, "vb-é"]]],
      ["c", [[3, 3, 1, "vc"]]],
    ]);
    expect(inPlace.loaded!.entries).toBe(3);
  });

  test("a key that is not UTF-8, in a frame whose checksum holds, is E_CORRUPT naming the file and the frame", async () => {
    const out = new ByteWriter(64).u8(3).u32(2); // a chains frame of two keys
    for (const key of [bytes("a"), new Uint8Array([0x62, 0xff])])
      out.bytes(key).u32(1).u64(1).u64(1).u32(1).u8(0).bytes(bytes("v"));
    const { fs, bodyStart } = await checkpointOf(1, 2, encodeFrame(out.written()));
    const store = createMvccStore();
    const loading = loadNewestCheckpoint(fs, DIR, ({ revision, compactedRevision, chains }) =>
      store.restore(revision, compactedRevision, chains),
    );
    const error = await loading.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code).toBe("E_CORRUPT");
    expect((error as HomeKvError).message).toContain(`damaged at byte offset ${bodyStart}: string at`);
  });
});

describe("writes during a checkpoint", () => {
  test("writes applied while the slices are written (after the snapshot revision) do not appear in the checkpoint, even with GC running", async () => {
    const inner = await newFs();
    const store = filledStore(60);
    const snapshotRevision = store.revision;
    const expected = liveState(store);
    const keys = expected.map((e) => e.key);
    let appends = 0;
    const fs = observedFs(inner, () => {
      appends++;
      // Between slices: overwrite keys not yet copied, delete some, add new ones on both ends, then GC.
      const n = appends;
      const ops: WriteOp[] = [
        put(keys.at(-n)!, `changed during checkpoint ${n}`),
        put(`aaa-new-${n}`, "new"),
        put(`zzz-new-${n}`, "new"),
      ];
      const victim = keys[keys.length - 1 - ((n * 7) % 20) - 20];
      if (victim !== undefined && !ops.some((op) => op.key === victim)) ops.push(del(victim));
      commit(store, ...ops);
      store.collectGarbage(1_000);
    });

    const written = await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 5 });
    expect(appends).toBeGreaterThan(5); // the writes really did interleave with the slices
    expect(store.revision).toBeGreaterThan(snapshotRevision + 5);
    expect(written.revision).toBe(snapshotRevision);
    const loaded = await loadNewest(inner);
    expect(loaded?.revision).toBe(snapshotRevision);
    expect(loaded?.live).toEqual(expected);
    expect(loaded!.chains.every((c) => c.versions.every((v) => v.revision <= snapshotRevision))).toBe(true);
    // The snapshot that pinned the revision was released: GC may collect again.
    expect(store.stats().openSnapshots).toBe(0);
  });

  test("a compaction while the slices are written is not in the checkpoint: it holds, and claims, the history readable when pinned, each revision reading as the original did", async () => {
    const inner = await newFs();
    const store = createMvccStore({ historyRevisions: 3 });
    commit(store, put("a", "a1"), put("b", "b1"));
    commit(store, put("b", "b2"));
    commit(store, put("a", "a3"));
    const revision = store.revision;
    const compactedRevision = store.compactedRevision;
    const before = Array.from({ length: revision + 1 }, (_, at) =>
      at < store.compactedRevision ? undefined : store.read(["a", "b"], at),
    );
    // Once "a" is copied, writes move the compacted revision to 3 and GC runs: the snapshot holds
    // it at the compacted revision it was pinned at, so b1 is still there when "b" is copied.
    const fs = observedFs(inner, () => {
      for (let i = 0; i < 3; i++) commit(store, put("c", `c${i}`));
      store.collectGarbage(100);
    });
    await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 1 });
    const restored = createMvccStore({ historyRevisions: 3 });
    await loadNewestCheckpoint(inner, DIR, (checkpoint) =>
      restored.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
    );
    expect(restored.revision).toBe(revision);
    expect(store.compactedRevision).toBeGreaterThan(compactedRevision);
    expect(restored.compactedRevision).toBe(compactedRevision);
    for (let at = restored.compactedRevision; at <= revision; at++)
      expect({ at, values: restored.read(["a", "b"], at).map((v) => v && text(v)) }).toEqual({
        at,
        values: before[at]!.map((v) => v && text(v)),
      });
  });
});

describe("damage", () => {
  async function smallCheckpoint(): Promise<{
    fs: MemoryFileSystem;
    path: string;
    file: Uint8Array;
    starts: number[];
  }> {
    const fs = await newFs();
    const store = filledStore(16);
    const written = await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
    const path = `${DIR}/${written.name}`;
    const file = fs.bytes(path).slice();
    return { fs, path, file, starts: frameStarts(file) };
  }

  test("a flipped byte anywhere in the file is E_CORRUPT naming the file and the offset of the damaged frame", async () => {
    const { fs, path, file, starts } = await smallCheckpoint();
    expect(starts.length).toBeGreaterThan(5);
    for (let at = 0; at < file.byteLength; at++) {
      const damaged = file.slice();
      damaged[at]! ^= 0x10;
      fs.overwrite(path, damaged);
      const error = await loadError(fs);
      const frameStart = starts.findLast((start) => start <= at)!;
      expect({ at, message: error.message }).toEqual({ at, message: expect.stringContaining(path) });
      expect({ at, message: error.message }).toEqual({
        at,
        message: expect.stringContaining(`byte offset ${frameStart}:`),
      });
    }
  });

  test("a file cut short at any offset is E_CORRUPT (never a partial load), and a cut between frames says the end frame is missing", async () => {
    const { fs, path, file, starts } = await smallCheckpoint();
    for (let cut = 0; cut < file.byteLength; cut++) {
      fs.overwrite(path, file.subarray(0, cut));
      const error = await loadError(fs);
      const frameStart = starts.findLast((start) => start <= cut)!;
      expect({ cut, message: error.message }).toEqual({ cut, message: expect.stringContaining(path) });
      expect({ cut, message: error.message }).toEqual({
        cut,
        message: expect.stringContaining(`byte offset ${frameStart}:`),
      });
      if (cut > 0 && starts.includes(cut)) expect(error.message).toContain("end frame is missing");
    }
  });

  test("bytes after the end frame are E_CORRUPT", async () => {
    const { fs, path, file } = await smallCheckpoint();
    for (const extra of [new Uint8Array(1), new Uint8Array(30), bytes("garbage after the end")]) {
      const longer = new Uint8Array(file.byteLength + extra.byteLength);
      longer.set(file);
      longer.set(extra, file.byteLength);
      fs.overwrite(path, longer);
      const error = await loadError(fs);
      expect(error.message).toContain(`byte offset ${file.byteLength}`);
    }
  });

  test("an end frame whose count disagrees with the entries is E_CORRUPT", async () => {
    const chains: KeyChain[] = [
      { key: "a", versions: [{ value: bytes("1"), revision: 1, createRevision: 1, version: 1 }] },
      { key: "b", versions: [{ value: bytes("2"), revision: 2, createRevision: 2, version: 1 }] },
    ];
    const { fs } = await checkpointOf(2, 3, encodeChainsFrame(chains));
    expect((await loadError(fs)).message).toContain("end frame counts 3 keys");
  });

  test("a checkpoint whose header names another revision than its file name is E_CORRUPT", async () => {
    const { fs, path, file } = await smallCheckpoint();
    await fs.remove(path);
    fs.overwrite(`${DIR}/${CHECKPOINT_FILES.fileName(999)}`, file);
    expect((await loadError(fs)).message).toMatch(/header says revision \d+, the file name 999/);
  });
});

describe("failures while writing", () => {
  test.each([
    ["append", "ENOSPC"],
    ["sync", "EIO"],
    ["rename", "EIO"],
  ] as const)(
    "a fault on %s (%s): the checkpoint is not under its final name, no temporary file is left, the old checkpoint still loads",
    async (op, code) => {
      const fs = await newFs();
      const store = filledStore(20);
      const old = await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
      const oldState = liveState(store);
      commit(store, put("after-the-old-checkpoint", "x"));
      const newName = CHECKPOINT_FILES.fileName(store.revision);

      fs.injectFault({ op, code, pathIncludes: ".ckpt" });
      let failed: unknown;
      await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 }).catch((error) => {
        failed = error;
      });
      expect((failed as { code?: string } | undefined)?.code).toBe(code);
      expect((await fs.list(DIR)).sort()).toEqual([old.name]);
      expect(newName).not.toBe(old.name);
      const loaded = await loadNewest(fs);
      expect(loaded?.revision).toBe(old.revision);
      expect(loaded?.live).toEqual(oldState);

      fs.clearFaults();
      const retried = await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
      expect(retried.name).toBe(newName);
      expect((await loadNewest(fs))?.live).toEqual(liveState(store));
    },
  );

  test("a temporary file left by an earlier failed attempt is replaced, not appended to", async () => {
    const fs = await newFs();
    const store = filledStore(10);
    const name = CHECKPOINT_FILES.fileName(store.revision);
    fs.overwrite(`${DIR}/${name}.tmp`, bytes("leftover from a crash"));
    await writeCheckpoint({ fs, dir: DIR, store, sliceKeysMax: 4 });
    expect((await loadNewest(fs))?.live).toEqual(liveState(store));
    expect(await fs.list(DIR)).toEqual([name]);
  });
});
