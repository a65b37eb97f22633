import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../src/io/format/frame.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import {
  CHECKPOINT_FILES,
  encodeChainsFrame,
  encodeEndFrame,
  encodeMetaFrame,
  encodeRaftFrame,
  encodeReplicaFrame,
  encodeTransactionsFrame,
  type RaftPosition,
  REPLICATED_CHECKPOINT_FILES,
  type ReplicaState,
} from "../../src/storage/checkpoint/checkpoint-format.ts";
import { loadNewestCheckpoint, loadReplicatedCheckpoint } from "../../src/storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../src/storage/checkpoint/checkpoint-writer.ts";
import { createMvccStore, type KeyChain } from "../../src/storage/mvcc/store.ts";
import { bytes } from "../helpers/bytes.ts";
import { rejectionMessage } from "../helpers/rejection.ts";
import { frameStarts, put } from "../helpers/storage.ts";

/**
 * The replicated checkpoint (checkpoint-format.ts): a plain checkpoint's frames under the HKVRCP
 * header, numbered by Raft index, with the Raft position first and the replica state next. A test per
 * way it can break.
 */
const DIR = "/data/checkpoints";
const POSITION: RaftPosition = { revision: 2, term: 3, voters: [1, 2, 3], learners: [4] };
const REPLICA: ReplicaState = {
  members: [
    { name: "n1", peerAddress: "127.0.0.1:20011" },
    { name: "n2", peerAddress: "[::1]:20012" },
  ],
  requestIds: [
    { id: "set-1", revision: 1, deleted: 0 },
    { id: "txn-1", revision: 2, deleted: 1, succeeded: false },
    { id: "txn-2", revision: 2, deleted: 0, succeeded: true },
  ],
};
const CHAINS: KeyChain[] = [
  { key: "a", versions: [{ value: bytes("1"), revision: 1, createRevision: 1, version: 1 }] },
  { key: "b", versions: [{ value: bytes("2"), revision: 2, createRevision: 2, version: 1 }] },
];
/** Restores into a store of its own (the corruption cases never reach it). */
const intoNewStore = (checkpoint: { revision: number; compactedRevision: number; chains: Iterable<KeyChain> }) =>
  createMvccStore().restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains);
const path = (index: number) => `${DIR}/${REPLICATED_CHECKPOINT_FILES.fileName(index)}`;

const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** A well-formed replicated checkpoint at Raft index 7, frame by frame. */
const frames = (position: RaftPosition = POSITION) => [
  REPLICATED_CHECKPOINT_FILES.encodeHeader(7),
  encodeRaftFrame(position),
  encodeReplicaFrame(REPLICA),
  encodeMetaFrame(0),
  encodeChainsFrame(CHAINS),
  encodeEndFrame(2),
];

async function fsWith(name: string, file: Uint8Array): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  fs.overwrite(`${DIR}/${name}`, file);
  return fs;
}

async function corruption(load: () => Promise<unknown>): Promise<string> {
  const error = await load().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe("E_CORRUPT");
  return (error as HomeKvError).message;
}

describe("replicated checkpoints", () => {
  test("written with a Raft position, named by its index, read back with the store, the index, term and members", async () => {
    const store = createMvccStore({ historyRevisions: 10 });
    store.apply({ revision: 1, ops: [put("a", "1"), put("b", "1")] });
    store.apply({ revision: 2, ops: [put("a", "2")] });
    const fs = new MemoryFileSystem();
    await fs.mkdirp(DIR);
    const written = await writeCheckpoint({
      fs,
      dir: DIR,
      store,
      sliceKeysMax: 1,
      raftPosition: () => ({ index: 9, ...POSITION, replica: REPLICA }),
    });
    expect(written).toMatchObject({ index: 9, revision: 2, name: REPLICATED_CHECKPOINT_FILES.fileName(9), entries: 2 });
    const restored = createMvccStore({ historyRevisions: 10 });
    const loaded = await loadReplicatedCheckpoint(fs, path(9), (checkpoint) =>
      restored.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
    );
    expect(loaded).toMatchObject({ index: 9, revision: 2, raft: POSITION, replica: REPLICA, bytes: written.bytes });
    expect(restored.dumpChains({ limit: 10, revision: 2 })).toEqual(store.dumpChains({ limit: 10, revision: 2 }));
    // A single server's loader does not take it for one of its own: it does not even list it.
    expect(await loadNewestCheckpoint(fs, DIR, intoNewStore)).toBeUndefined();
  });

  test("a position whose revision is not the store's is a bug the writer refuses", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdirp(DIR);
    const store = createMvccStore();
    const writing = writeCheckpoint({
      fs,
      dir: DIR,
      store,
      sliceKeysMax: 4,
      raftPosition: () => ({ index: 1, ...POSITION, replica: REPLICA }),
    });
    expect(await rejectionMessage(writing)).toMatch("Raft position at revision 2, store at 0");
  });

  test("without its Raft frame it is damage", async () => {
    const [header, , , ...rest] = frames();
    const fs = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), concat([header!, ...rest]));
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(7), intoNewStore))).toContain(
      "without its Raft position",
    );
  });

  test("without its replica state, or with it anywhere but after the Raft frame, it is damage", async () => {
    const [header, raft, replica, meta, ...rest] = frames();
    const without = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), concat([header!, raft!, meta!, ...rest]));
    expect(await corruption(() => loadReplicatedCheckpoint(without, path(7), intoNewStore))).toContain(
      "without its replica state",
    );
    const late = await fsWith(
      REPLICATED_CHECKPOINT_FILES.fileName(7),
      concat([header!, raft!, meta!, replica!, ...rest]),
    );
    expect(await corruption(() => loadReplicatedCheckpoint(late, path(7), intoNewStore))).toContain(
      "does not follow the Raft position",
    );
  });

  test("a partition's transaction state rides after the replica state and reads back; anywhere else it is damage", async () => {
    const transactions = Uint8Array.of(1, 0, 0);
    const store = createMvccStore();
    store.apply({ revision: 2, ops: [put("a", "1")] });
    const fs = new MemoryFileSystem();
    await fs.mkdirp(DIR);
    const replica = { members: [], requestIds: [], transactions };
    await writeCheckpoint({
      fs,
      dir: DIR,
      store,
      sliceKeysMax: 4,
      raftPosition: () => ({ index: 9, ...POSITION, replica }),
    });
    const loaded = await loadReplicatedCheckpoint(fs, path(9), intoNewStore);
    expect(loaded.replica).toEqual(replica);
    const [header, raft, replicaFrame, meta, ...rest] = frames();
    const misplaced = await fsWith(
      REPLICATED_CHECKPOINT_FILES.fileName(7),
      concat([header!, raft!, replicaFrame!, meta!, encodeTransactionsFrame(transactions), ...rest]),
    );
    expect(await corruption(() => loadReplicatedCheckpoint(misplaced, path(7), intoNewStore))).toContain(
      "transactions that do not follow the replica state",
    );
  });

  test("replica state claiming more ids than it holds, or an unknown outcome, is damage", async () => {
    const [header, raft, , ...rest] = frames();
    const withReplica = async (state: ReplicaState, patch: (frame: Uint8Array) => void) => {
      const frame = encodeReplicaFrame(state);
      patch(frame);
      // The frame's checksum is recomputed: damage the checksum would not catch (a writer's bug).
      const payload = frame.subarray(FRAME_HEADER_BYTES);
      return fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), concat([header!, raft!, encodeFrame(payload), ...rest]));
    };
    const empty = { members: [], requestIds: [] };
    // type · member count · request id count: the last claims a million.
    const inflated = await withReplica(empty, (f) =>
      new DataView(f.buffer, f.byteOffset).setUint32(FRAME_HEADER_BYTES + 5, 1_000_000, true),
    );
    expect(await corruption(() => loadReplicatedCheckpoint(inflated, path(7), intoNewStore))).toContain(
      "1000000 request ids",
    );
    const outcome = await withReplica({ members: [], requestIds: [{ id: "x", revision: 1, deleted: 0 }] }, (f) => {
      f[f.byteLength - 1] = 7;
    });
    expect(await corruption(() => loadReplicatedCheckpoint(outcome, path(7), intoNewStore))).toContain("has outcome 7");
  });

  test("a Raft frame anywhere but first is damage", async () => {
    const [header, raft, replica, meta, ...rest] = frames();
    const fs = await fsWith(
      REPLICATED_CHECKPOINT_FILES.fileName(7),
      concat([header!, meta!, raft!, replica!, ...rest]),
    );
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(7), intoNewStore))).toContain(
      "not the first frame",
    );
  });

  test("a header whose index is not the file name's is damage", async () => {
    const fs = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(8), concat(frames()));
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(8), intoNewStore))).toContain(
      "header says Raft index 7, the file name 8",
    );
  });

  test("a flipped byte in the Raft frame is damage, at that frame's offset", async () => {
    const file = concat(frames());
    const [, raftAt] = frameStarts(file);
    file[raftAt! + 20]! ^= 0x40;
    const fs = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), file);
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(7), intoNewStore))).toContain(`offset ${raftAt}`);
  });

  test("a file cut short is damage", async () => {
    const file = concat(frames());
    const fs = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), file.subarray(0, file.byteLength - 5));
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(7), intoNewStore))).toContain("cut short");
  });

  test("a Raft frame with no voter, or more node ids than it holds, is damage", async () => {
    const none = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(7), concat(frames({ ...POSITION, voters: [] })));
    expect(await corruption(() => loadReplicatedCheckpoint(none, path(7), intoNewStore))).toContain("no voter");
    const file = concat(frames());
    const [, raftAt] = frameStarts(file);
    // The voter count (after the frame header, the type, the revision and the term) claims a million.
    const raft = new Uint8Array(file.subarray(raftAt! + 12, frameStarts(file)[2]!));
    new DataView(raft.buffer).setUint32(17, 1_000_000, true);
    const [header, , ...rest] = frames();
    const inflated = await fsWith(
      REPLICATED_CHECKPOINT_FILES.fileName(7),
      concat([header!, encodeFrame(raft), ...rest]),
    );
    expect(await corruption(() => loadReplicatedCheckpoint(inflated, path(7), intoNewStore))).toContain(
      "1000000 node ids",
    );
  });

  test("a single server's checkpoint under a replicated name is not one (bad magic), and a Raft frame in a single server's checkpoint is refused", async () => {
    const plain = concat([
      CHECKPOINT_FILES.encodeHeader(2),
      encodeMetaFrame(0),
      encodeChainsFrame(CHAINS),
      encodeEndFrame(2),
    ]);
    const fs = await fsWith(REPLICATED_CHECKPOINT_FILES.fileName(2), plain);
    expect(await corruption(() => loadReplicatedCheckpoint(fs, path(2), intoNewStore))).toContain("bad magic");
    const [, ...body] = frames();
    const mixed = await fsWith(CHECKPOINT_FILES.fileName(2), concat([CHECKPOINT_FILES.encodeHeader(2), ...body]));
    expect(await corruption(() => loadNewestCheckpoint(mixed, DIR, intoNewStore))).toContain("holds a Raft position");
  });
});
