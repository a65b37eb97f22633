import { describe, expect, test } from "bun:test";
import { encodeMessages } from "../../../src/cluster/raft/message-codec.ts";
import type { NodeId, SnapshotMessage, SnapshotOutcome } from "../../../src/cluster/raft/types.ts";
import { loadMemberCheckpoint } from "../../../src/cluster/replication/member-checkpoints.ts";
import { SnapshotReceiver } from "../../../src/cluster/replication/snapshot-receiver.ts";
import { SnapshotSender } from "../../../src/cluster/replication/snapshot-sender.ts";
import {
  decodeStreamFrame,
  encodeStreamFrame,
  SNAPSHOT_STREAM_TAG,
  type StreamFrame,
} from "../../../src/cluster/replication/snapshot-stream-format.ts";
import { StreamSlots } from "../../../src/cluster/replication/stream-slots.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";
import type { ReadFile } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { REPLICATED_CHECKPOINT_FILES } from "../../../src/storage/checkpoint/checkpoint-format.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import { waitFor } from "../../helpers/wait.ts";

const DIR = "/data/checkpoints";
const SNAPSHOT: SnapshotMessage = {
  type: "snapshot",
  from: 1,
  to: 2,
  term: 4,
  snapshot: { index: 7, term: 3, data: Uint8Array.of(1), conf: { voters: [1, 2, 3], learners: [] } },
};

describe("snapshot stream format", () => {
  const frames: StreamFrame[] = [
    { type: "begin", group: 1, stream: 9, fileBytes: 300_000, crc: 0xdeadbeef, message: Uint8Array.of(1, 2, 3) },
    { type: "chunk", group: 1, stream: 9, offset: 1 << 20, data: Uint8Array.of(5, 6) },
    { type: "ack", group: 2, stream: 9, received: 2 ** 40 },
    { type: "done", group: 1, stream: 9, ok: false, reason: "disk full ✗" },
    { type: "done", group: 1, stream: 9, ok: true, reason: "" },
  ];

  test("every frame reads back as written, and starts with the stream's tag, not a message batch's version", () => {
    for (const frame of frames) {
      const payload = encodeStreamFrame(frame);
      expect(payload[0]).toBe(SNAPSHOT_STREAM_TAG);
      expect(decodeStreamFrame(payload)).toEqual(frame);
    }
  });

  test("a payload cut short, with a stray byte, an unknown type or outcome, or another tag is a FormatError", () => {
    const chunk = encodeStreamFrame(frames[1]!);
    const broken = [
      chunk.subarray(0, chunk.byteLength - 1),
      Uint8Array.of(...chunk, 0),
      Uint8Array.of(SNAPSHOT_STREAM_TAG, 9, 1, 1),
      Uint8Array.of(...encodeStreamFrame(frames[4]!).subarray(0, 4), 2, 0, 0, 0, 0),
      encodeMessages([{ group: 1, message: SNAPSHOT }]),
    ];
    for (const payload of broken) expect(() => decodeStreamFrame(payload)).toThrow(FormatError);
  });
});

/** A receiver on a memory file system, with what it sends and delivers. */
async function receiver(stallTimeoutMs = 5_000) {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  const sent: StreamFrame[] = [];
  const delivered: SnapshotMessage[] = [];
  const lines: string[] = [];
  const r = new SnapshotReceiver({
    group: 1,
    fs,
    dir: DIR,
    send: (_to, payload) => sent.push(decodeStreamFrame(payload)),
    deliver: (message) => delivered.push(message),
    stallTimeoutMs,
    log: (line) => lines.push(line),
  });
  return { fs, r, sent, delivered, lines };
}

const FILE = Uint8Array.from({ length: 2_500 }, (_, i) => (i * 31) % 251);
const begin = (crc = Bun.hash.crc32(FILE), message = SNAPSHOT) =>
  ({
    type: "begin",
    group: 1,
    stream: 5,
    fileBytes: FILE.byteLength,
    crc,
    message: encodeMessages([{ group: 1, message }]),
  }) as const;
const chunk = (offset: number, length = 1_000) =>
  ({ type: "chunk", group: 1, stream: 5, offset, data: FILE.subarray(offset, offset + length) }) as const;
const doneOf = (sent: StreamFrame[]) => sent.find((f) => f.type === "done") as Extract<StreamFrame, { type: "done" }>;

describe("the receiving side", () => {
  test("chunks in order are acknowledged as written; the whole file gets its name, then the message is delivered", async () => {
    const { fs, r, sent, delivered } = await receiver();
    r.received(1, begin());
    for (const offset of [0, 1_000, 2_000]) r.received(1, chunk(offset));
    await waitFor(() => delivered.length === 1, { what: "the snapshot message to be delivered" });
    expect(delivered[0]).toEqual(SNAPSHOT);
    expect(await fs.readFile(`${DIR}/${REPLICATED_CHECKPOINT_FILES.fileName(7)}`)).toEqual(FILE);
    expect(await fs.list(DIR)).toEqual([REPLICATED_CHECKPOINT_FILES.fileName(7)]);
    expect(sent.filter((f) => f.type === "ack").map((f) => (f as { received: number }).received)).toEqual([
      1_000, 2_000, 2_500,
    ]);
    expect(doneOf(sent)).toMatchObject({ ok: true, stream: 5 });
  });

  test("a lost chunk fails the stream: nothing delivered, the partial file removed", async () => {
    const { fs, r, sent, delivered } = await receiver();
    r.received(1, begin());
    r.received(1, chunk(0));
    r.received(1, chunk(2_000));
    expect(doneOf(sent)).toMatchObject({ ok: false });
    expect(doneOf(sent).reason).toContain("one was lost");
    await waitFor(async () => (await fs.list(DIR)).length === 0, { what: "the partial file to be removed" });
    expect(delivered).toEqual([]);
  });

  test("a file that fails its checksum is not named nor delivered", async () => {
    const { fs, r, sent, delivered } = await receiver();
    r.received(1, begin(Bun.hash.crc32(FILE) ^ 1));
    for (const offset of [0, 1_000, 2_000]) r.received(1, chunk(offset));
    await waitFor(() => doneOf(sent), { what: "the stream's answer" });
    expect(doneOf(sent)).toMatchObject({ ok: false, reason: "the file received fails its checksum" });
    await waitFor(async () => (await fs.list(DIR)).length === 0, { what: "the file to be removed" });
    expect(delivered).toEqual([]);
  });

  test("a begin whose message claims another sender is refused at once", async () => {
    const { r, sent } = await receiver();
    r.received(3, begin());
    expect(doneOf(sent)).toMatchObject({ ok: false });
    expect(doneOf(sent).reason).toContain("on member 3's stream");
  });

  test("two leaders' streams of the same index (one deposed mid-stream) each complete their own file: the one named is the one checksummed and delivered", async () => {
    const { fs, r, sent, delivered } = await receiver();
    const other = FILE.map((byte) => byte ^ 0x5a);
    const acked = (stream: number, received: number) => () =>
      sent.some((f) => f.type === "ack" && f.stream === stream && f.received === received);
    r.received(1, begin());
    r.received(1, chunk(0));
    await waitFor(acked(5, 1_000), { what: "member 1's first chunk written" });
    // Member 3 leads now, and sends its own checkpoint at the same index while member 1's stream goes on.
    r.received(3, {
      ...begin(Bun.hash.crc32(other), { ...SNAPSHOT, from: 3 }),
      stream: 6,
    });
    r.received(3, { type: "chunk", group: 1, stream: 6, offset: 0, data: other.subarray(0, 1_000) });
    await waitFor(acked(6, 1_000), { what: "member 3's first chunk written" });
    for (const offset of [1_000, 2_000]) r.received(1, chunk(offset));
    await waitFor(() => delivered.length === 1, { what: "member 1's snapshot to be delivered" });
    expect(delivered[0]!.from).toBe(1);
    expect(await fs.readFile(`${DIR}/${REPLICATED_CHECKPOINT_FILES.fileName(7)}`)).toEqual(FILE);
    // Member 3's stream completes too, its file as whole.
    r.received(3, { type: "chunk", group: 1, stream: 6, offset: 1_000, data: other.subarray(1_000) });
    await waitFor(() => delivered.length === 2, { what: "member 3's snapshot to be delivered" });
    expect(await fs.readFile(`${DIR}/${REPLICATED_CHECKPOINT_FILES.fileName(7)}`)).toEqual(other);
    expect(sent.filter((f) => f.type === "done").map((f) => [f.stream, (f as { ok: boolean }).ok])).toEqual([
      [5, true],
      [6, true],
    ]);
  });

  test("a stream begun again (the leader's retry of the same snapshot) is not undone by the cleanup of the one it replaces", async () => {
    const { fs, r, sent, delivered } = await receiver();
    r.received(1, begin());
    r.received(1, chunk(0));
    r.received(1, { ...begin(), stream: 6 });
    for (const offset of [0, 1_000, 2_000]) r.received(1, { ...chunk(offset), stream: 6 });
    await waitFor(() => doneOf(sent), { what: "the second stream's answer" });
    expect(doneOf(sent)).toMatchObject({ ok: true, stream: 6 });
    expect(delivered).toEqual([SNAPSHOT]);
    expect(await fs.readFile(`${DIR}/${REPLICATED_CHECKPOINT_FILES.fileName(7)}`)).toEqual(FILE);
  });

  test("a stream that stalls is given up and its file removed", async () => {
    const { fs, r, sent, lines } = await receiver(50);
    r.received(1, begin());
    r.received(1, chunk(0));
    await waitFor(() => doneOf(sent), { what: "the stalled stream to be given up" });
    expect(doneOf(sent).reason).toBe("no chunk for 50 ms");
    expect(lines[0]).toContain("gave up receiving the snapshot at index 7");
    await waitFor(async () => (await fs.list(DIR)).length === 0, { what: "the partial file to be removed" });
  });
});

describe("the sending side", () => {
  /** `bytes` as a file open for reading (a checkpoint the sender opens). */
  async function opened(bytes: Uint8Array): Promise<ReadFile> {
    const fs = new MemoryFileSystem();
    await fs.mkdirp("/sent");
    fs.overwrite("/sent/checkpoint", bytes);
    return fs.openRead("/sent/checkpoint");
  }

  function sender(
    openCheckpoint: (index: number) => Promise<ReadFile>,
    stallTimeoutMs = 5_000,
    slots?: StreamSlots,
    group = 1,
  ) {
    const sent: StreamFrame[] = [];
    const reports: [NodeId, SnapshotOutcome][] = [];
    const s = new SnapshotSender({
      group,
      slots,
      send: (_to, payload) => sent.push(decodeStreamFrame(payload)),
      openCheckpoint,
      report: (to, outcome) => reports.push([to, outcome]),
      limits: { chunkBytes: 1_000, windowChunks: 2, stallTimeoutMs },
      log: () => {},
    });
    return { s, sent, reports };
  }

  test("sends no more than the window ahead of the acks, then reports what the follower answered", async () => {
    const { s, sent, reports } = sender(() => opened(FILE));
    s.offer(SNAPSHOT);
    await waitFor(() => sent.length === 3, { what: "the begin and the window's two chunks" });
    expect(sent.map((f) => f.type)).toEqual(["begin", "chunk", "chunk"]);
    expect(sent[0]).toMatchObject({ fileBytes: 2_500, crc: Bun.hash.crc32(FILE) });
    s.offer(SNAPSHOT); // the core sends the same snapshot again: the stream goes on
    expect(sent.length).toBe(3);
    s.received(2, { type: "ack", group: 1, stream: sent[0]!.stream, received: 1_000 });
    expect(sent.map((f) => f.type)).toEqual(["begin", "chunk", "chunk", "chunk"]);
    expect(sent.at(-1)).toMatchObject({ offset: 2_000 });
    s.received(2, { type: "done", group: 1, stream: sent[0]!.stream + 1, ok: true, reason: "" }); // another stream's
    expect(reports).toEqual([]);
    s.received(2, { type: "done", group: 1, stream: sent[0]!.stream, ok: true, reason: "" });
    expect(reports).toEqual([[2, "finished"]]);
    s.close();
  });

  test("streams of two groups to one peer take turns when the node allows one at a time; the second begins once the first is done", async () => {
    const slots = new StreamSlots(1);
    const first = sender(() => opened(FILE), 5_000, slots, 1);
    const second = sender(() => opened(FILE), 5_000, slots, 2);
    first.s.offer(SNAPSHOT);
    second.s.offer(SNAPSHOT);
    await waitFor(() => first.sent.length === 3, { what: "the first stream's begin and window" });
    await waitFor(() => slots.waiting(2) === 1, { what: "the second stream waiting for its turn" });
    expect(second.sent).toEqual([]);
    first.s.received(2, { type: "done", group: 1, stream: first.sent[0]!.stream, ok: true, reason: "" });
    await waitFor(() => second.sent.length === 3, { what: "the second stream to begin" });
    expect(second.sent[0]).toMatchObject({ type: "begin", group: 2 });
    // A stream given up while it waits gives its turn on: a third, closed, never holds the slot.
    const third = sender(() => opened(FILE), 5_000, slots, 3);
    third.s.offer(SNAPSHOT);
    await waitFor(() => slots.waiting(2) === 1, { what: "the third stream waiting" });
    third.s.close();
    second.s.close();
    const fourth = sender(() => opened(FILE), 5_000, slots, 4);
    fourth.s.offer(SNAPSHOT);
    await waitFor(() => fourth.sent.length === 3, { what: "the fourth stream to begin once the others let go" });
    fourth.s.close();
    first.s.close();
  });

  test("a follower that stops acknowledging, or a checkpoint that cannot be read, is reported failed", async () => {
    const stalled = sender(() => opened(FILE), 50);
    stalled.s.offer(SNAPSHOT);
    await waitFor(() => stalled.reports.length > 0, { what: "the stalled stream to be reported" });
    expect(stalled.reports).toEqual([[2, "failed"]]);
    const unreadable = sender(() => Promise.reject(new Error("ENOENT")));
    unreadable.s.offer(SNAPSHOT);
    await waitFor(() => unreadable.reports.length > 0, { what: "the unreadable checkpoint to be reported" });
    expect(unreadable.reports).toEqual([[2, "failed"]]);
  });
});

test("a member whose Raft log stands on a checkpoint that is missing does not start", async () => {
  const fs = new MemoryFileSystem();
  const error = await loadMemberCheckpoint(fs, DIR, 12, createMvccStore()).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe("E_CORRUPT");
  expect((error as HomeKvError).message).toContain(
    `${REPLICATED_CHECKPOINT_FILES.fileName(12)}, the checkpoint it stands on, is missing`,
  );
});
