import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ErrorCode, HomeKvError } from "../../../../src/errors.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../../../src/io/format/frame.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import { Manifest } from "../../../../src/storage/flsm/manifest/manifest.ts";
import { InvalidEditError } from "../../../../src/storage/flsm/manifest/manifest-state.ts";
import { encodeEditFrame, type VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { rejection } from "../../../helpers/rejection.ts";
import { frameStarts } from "../../../helpers/storage.ts";
import { DIR, EDITS, table } from "./fixtures.ts";

const MANIFEST_1 = `${DIR}/MANIFEST-1`;

async function withEdits(fs: MemoryFileSystem, edits = EDITS): Promise<Manifest> {
  const manifest = await Manifest.open(fs, DIR);
  for (const edit of edits) await manifest.log(edit);
  return manifest;
}

async function expectError(promise: Promise<unknown>, code: ErrorCode, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe(code);
  expect((error as HomeKvError).message).toMatch(message);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

async function files(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.list(DIR)).sort();
}

describe("Manifest", () => {
  test("a new directory gets MANIFEST-1 and CURRENT naming it, with the empty state", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR);
    expect(await files(fs)).toEqual(["CURRENT", "MANIFEST-1"]);
    expect(manifest.number).toBe(1);
    expect(manifest.liveFiles()).toEqual([]);
    expect(manifest.state.nextFileNumber).toBe(1);
    const again = await Manifest.open(fs, DIR);
    expect(again.state.snapshot()).toEqual(manifest.state.snapshot());
  });

  test("logged edits are durable: after a power cut the reopened state is the logged one", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await withEdits(fs);
    fs.crash();
    const reopened = await Manifest.open(fs, DIR);
    expect(reopened.state.snapshot()).toEqual(manifest.state.snapshot());
    expect(reopened.liveFiles()).toEqual([2, 3]);
    expect(reopened.state.flushedRevision).toBe(30);
    expect(reopened.state.compactedRevision).toBe(7);
    expect(reopened.state.guards(1).map((g) => g.tables.map((t) => t.number))).toEqual([[3], [2]]);
    expect(frameStarts(fs.bytes(MANIFEST_1)).length).toBe(2 + EDITS.length + 1);
  });

  test("an edit that does not fit the state throws and writes nothing", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await withEdits(fs);
    const size = manifest.logBytes;
    const before = manifest.state.snapshot();
    expect(await rejection(manifest.log([{ kind: "remove-table", number: 1, level: 0 }]))).toBeInstanceOf(
      InvalidEditError,
    );
    expect(manifest.logBytes).toBe(size);
    expect(manifest.state.snapshot()).toEqual(before);
    await manifest.log([{ kind: "flushed-revision", revision: 31 }]);
    expect(manifest.state.flushedRevision).toBe(31);
  });

  test("allocated file numbers are recorded by the next edit, so a restart never hands one out again", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR);
    const first = manifest.allocateFileNumber();
    const second = manifest.allocateFileNumber();
    expect([first, second]).toEqual([1, 2]);
    await manifest.log([{ kind: "add-table", table: table(first, 0, "a", "b") }]);
    expect(manifest.state.nextFileNumber).toBe(3);
    fs.crash();
    const reopened = await Manifest.open(fs, DIR);
    expect(reopened.allocateFileNumber()).toBe(3);
  });

  test("logs called together are written one at a time, in call order", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR);
    const revisions = Array.from({ length: 20 }, (_, i) => i + 1);
    await Promise.all(revisions.map((revision) => manifest.log([{ kind: "flushed-revision", revision }])));
    fs.crash();
    expect((await Manifest.open(fs, DIR)).state.flushedRevision).toBe(20);
    expect(frameStarts(fs.bytes(MANIFEST_1)).length).toBe(2 + 20 + 1);
  });

  test("the log is rewritten once past rewriteBytesMin: a new manifest with the whole state, the old one removed", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR, { rewriteBytesMin: 300, rewriteGrowthFactor: 1 });
    for (let revision = 1; revision <= 100; revision++) {
      await manifest.log([{ kind: "flushed-revision", revision }]);
      expect(manifest.logBytes).toBeLessThan(300 + 40);
    }
    expect(manifest.stats.rewrites).toBeGreaterThan(5);
    expect(await files(fs)).toEqual(["CURRENT", `MANIFEST-${manifest.number}`]);
    fs.crash();
    const reopened = await Manifest.open(fs, DIR);
    expect(reopened.number).toBe(manifest.number);
    expect(reopened.state.flushedRevision).toBe(100);
  });

  test("a rewrite waits until the log is rewriteGrowthFactor times a fresh manifest, so a large state is not rewritten at every edit", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR, { rewriteBytesMin: 0, rewriteGrowthFactor: 4 });
    const tables: VersionEdit = Array.from({ length: 50 }, (_, i) => ({
      kind: "add-table",
      table: table(i + 1, 0, `k${i}`, `k${i}z`),
    }));
    await manifest.log([...tables, { kind: "next-file-number", number: 51 }]);
    await manifest.rewrite();
    const fresh = manifest.logBytes;
    let revision = 0;
    // Each bump adds ~14 bytes: about 3 × fresh of them before the log reaches 4 × fresh.
    for (let i = 0; i < 10_000 && manifest.number === 2; i++) {
      await manifest.log([{ kind: "flushed-revision", revision: ++revision }]);
      if (manifest.number === 2) expect(manifest.logBytes).toBeLessThan(4 * fresh);
    }
    expect(manifest.number).toBe(3);
    expect(revision).toBeGreaterThan((3 * fresh) / 20);
  });

  test("an explicit rewrite keeps the state and leaves only the new manifest", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await withEdits(fs);
    await manifest.rewrite();
    expect(manifest.number).toBe(2);
    expect(await files(fs)).toEqual(["CURRENT", "MANIFEST-2"]);
    await manifest.log([{ kind: "flushed-revision", revision: 99 }]);
    fs.crash();
    const reopened = await Manifest.open(fs, DIR);
    expect(reopened.state.snapshot()).toEqual(manifest.state.snapshot());
  });

  test("leftovers of an interrupted rewrite (CURRENT.tmp, a manifest CURRENT does not name) are removed at open", async () => {
    const fs = new MemoryFileSystem();
    await withEdits(fs);
    fs.overwrite(`${DIR}/MANIFEST-2`, bytes("half a rewrite"));
    fs.overwrite(`${DIR}/CURRENT.tmp`, bytes("half a switch"));
    const reopened = await Manifest.open(fs, DIR);
    expect(await files(fs)).toEqual(["CURRENT", "MANIFEST-1"]);
    expect(reopened.liveFiles()).toEqual([2, 3]);
  });

  test("a disk full part way through an edit: E_DISK, the partial frame cut back, the state unchanged; the next edit works", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await withEdits(fs, EDITS.slice(0, 1));
    const size = manifest.logBytes;
    const before = manifest.state.snapshot();
    fs.setCapacity(fs.bytes(MANIFEST_1).byteLength + fs.bytes(`${DIR}/CURRENT`).byteLength + 10);
    await expectError(manifest.log(EDITS[1]!), "E_DISK", /manifest could not be written/);
    expect(manifest.logBytes).toBe(size);
    expect(manifest.state.snapshot()).toEqual(before);
    fs.setCapacity(undefined);
    await manifest.log(EDITS[1]!);
    fs.crash();
    expect((await Manifest.open(fs, DIR)).liveFiles()).toEqual([1, 2]);
  });

  test("after a failed sync no further edit is taken (the kernel may have dropped the pages) until a restart", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await withEdits(fs, EDITS.slice(0, 1));
    // A failed append is cut back: the manifest goes on, and says so.
    fs.injectFault({ op: "append", code: "ENOSPC", times: 1 });
    await expectError(manifest.log(EDITS[1]!), "E_DISK", /could not be written/);
    expect(manifest.acceptsEdits).toBe(true);
    fs.injectFault({ op: "sync", code: "EIO", times: 1 });
    await expectError(manifest.log(EDITS[1]!), "E_DISK", /could not be synced; restart/);
    expect(manifest.acceptsEdits).toBe(false);
    await expectError(manifest.log(EDITS[1]!), "E_DISK", /could not be synced; restart/);
    expect(manifest.liveFiles()).toEqual([1]);
  });

  test("close lets the edits queued before it finish, then refuses edits; a broken manifest closes too", async () => {
    const fs = new MemoryFileSystem();
    const manifest = await Manifest.open(fs, DIR);
    const queued = manifest.log(EDITS[0]!);
    await manifest.close();
    await queued;
    await expectError(manifest.log(EDITS[1]!), "E_UNAVAILABLE", /closed/);
    await manifest.close();
    expect((await Manifest.open(fs, DIR)).liveFiles()).toEqual([1]);

    const broken = await Manifest.open(fs, DIR);
    fs.injectFault({ op: "sync", code: "EIO", times: 1 });
    await expectError(broken.log(EDITS[1]!), "E_DISK", /restart/);
    await broken.close();
  });

  const realDir = mkdtempSync(join(tmpdir(), "homekv-manifest-"));
  afterAll(() => rmSync(realDir, { recursive: true, force: true }));

  test("on real files: create, log, rewrite, reopen", async () => {
    const dir = join(realDir, "flsm");
    const manifest = await Manifest.open(realFileSystem, dir);
    for (const edit of EDITS) await manifest.log(edit);
    await manifest.rewrite();
    await manifest.log([{ kind: "flushed-revision", revision: 40 }]);
    await manifest.close();
    expect((await realFileSystem.list(dir)).sort()).toEqual(["CURRENT", "MANIFEST-2"]);
    const reopened = await Manifest.open(realFileSystem, dir);
    expect(reopened.state.snapshot()).toEqual(manifest.state.snapshot());
    await reopened.close();
  });
});

describe("torn and damaged manifests", () => {
  /** MANIFEST-1's bytes after EDITS, and where each frame starts. */
  async function logged(): Promise<{ fs: MemoryFileSystem; file: Uint8Array; starts: number[] }> {
    const fs = new MemoryFileSystem();
    await withEdits(fs);
    const file = fs.bytes(MANIFEST_1).slice();
    return { fs, file, starts: frameStarts(file) };
  }

  test("a torn last edit (a crash during its append) is cut off: the edits before it stay, new ones follow", async () => {
    const { fs, file, starts } = await logged();
    const lastStart = starts.at(-2)!;
    for (const cut of [lastStart + 3, lastStart + FRAME_HEADER_BYTES, file.byteLength - 1]) {
      fs.overwrite(MANIFEST_1, file.subarray(0, cut));
      const reopened = await Manifest.open(fs, DIR);
      expect(reopened.stats.tornBytes).toBe(cut - lastStart);
      expect(reopened.liveFiles()).toEqual([1, 2]);
      expect(fs.bytes(MANIFEST_1).byteLength).toBe(lastStart);
      await reopened.log(EDITS[2]!);
      expect((await Manifest.open(fs, DIR)).liveFiles()).toEqual([2, 3]);
    }
  });

  test("zeros after the last edit (the file grew before its data reached the disk) are a torn tail", async () => {
    const { fs, file } = await logged();
    fs.overwrite(MANIFEST_1, concat(file, new Uint8Array(30)));
    const reopened = await Manifest.open(fs, DIR);
    expect(reopened.stats.tornBytes).toBe(30);
    expect(reopened.liveFiles()).toEqual([2, 3]);
  });

  test("a flipped byte in an edit in the middle of the log is E_CORRUPT naming the manifest and the frame's offset", async () => {
    const { fs, file, starts } = await logged();
    const damaged = file.slice();
    damaged[starts[3]! + FRAME_HEADER_BYTES + 2]! ^= 0x10;
    fs.overwrite(MANIFEST_1, damaged);
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${MANIFEST_1} is damaged at byte offset ${starts[3]}: frame payload fails its checksum`),
    );
  });

  test("a flipped byte in a frame header in the middle of the log is E_CORRUPT", async () => {
    const { fs, file, starts } = await logged();
    const damaged = file.slice();
    damaged[starts[2]! + 1]! ^= 0x01;
    fs.overwrite(MANIFEST_1, damaged);
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${MANIFEST_1} is damaged at byte offset ${starts[2]}: frame header`),
    );
  });

  test("a flipped byte in the last edit (whole, not torn) is E_CORRUPT, not cut off", async () => {
    const { fs, file, starts } = await logged();
    const damaged = file.slice();
    damaged[file.byteLength - 1]! ^= 0x01;
    fs.overwrite(MANIFEST_1, damaged);
    await expectError(Manifest.open(fs, DIR), "E_CORRUPT", new RegExp(`byte offset ${starts.at(-2)}: frame payload`));
  });

  test("a torn first edit (the state the file was written with, synced before CURRENT named it) is E_CORRUPT", async () => {
    const { fs, file, starts } = await logged();
    fs.overwrite(MANIFEST_1, file.subarray(0, starts[1]! + 5));
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${MANIFEST_1} is damaged at byte offset ${starts[1]}`),
    );
  });

  test("a damaged header (bad magic) is E_CORRUPT at offset 0", async () => {
    const { fs, file } = await logged();
    const frames = file.subarray(frameStarts(file)[1]!);
    const foreign = encodeFrame(bytes("NOTMANIFEST-------"));
    fs.overwrite(MANIFEST_1, concat(foreign, frames));
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${MANIFEST_1} is damaged at byte offset 0: not a HomeKV FLSM manifest`),
    );
  });

  test("a manifest whose header names another number than its file name is E_CORRUPT", async () => {
    const { fs, file } = await logged();
    fs.overwrite(`${DIR}/MANIFEST-2`, file);
    fs.overwrite(`${DIR}/CURRENT`, encodeFrame(bytes("MANIFEST-2")));
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      /MANIFEST-2 is damaged at byte offset 0: its header says manifest 1/,
    );
  });

  test("an intact frame holding an edit that does not fit the state is E_CORRUPT at its offset", async () => {
    const { fs, file } = await logged();
    const bad = encodeEditFrame([{ kind: "remove-table", number: 42, level: 3 }]);
    fs.overwrite(MANIFEST_1, concat(file, bad));
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`byte offset ${file.byteLength}: invalid manifest edit: table 42 is removed but not in the state`),
    );
  });

  test("a flipped byte in CURRENT is E_CORRUPT naming CURRENT", async () => {
    const { fs } = await logged();
    const current = fs.bytes(`${DIR}/CURRENT`).slice();
    current[FRAME_HEADER_BYTES + 9]! ^= 0x02;
    fs.overwrite(`${DIR}/CURRENT`, current);
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${DIR}/CURRENT is damaged at byte offset 0: frame payload fails`),
    );
  });

  test("a CURRENT with bytes after its frame, or empty, or not naming a manifest, is E_CORRUPT naming CURRENT", async () => {
    const { fs } = await logged();
    const current = fs.bytes(`${DIR}/CURRENT`).slice();
    const longer = concat(current, Uint8Array.of(7));
    const cases: [Uint8Array, RegExp][] = [
      [longer, new RegExp(`CURRENT is damaged at byte offset ${current.byteLength}: bytes after`)],
      [new Uint8Array(0), /CURRENT is damaged at byte offset 0: empty file/],
      [current.subarray(0, 5), /CURRENT is damaged at byte offset 0: only 5 bytes of a frame header/],
      [encodeFrame(bytes("MANIFEST-01")), /CURRENT is damaged at byte offset 12: "MANIFEST-01" is not a manifest name/],
    ];
    for (const [bytesOfCurrent, message] of cases) {
      fs.overwrite(`${DIR}/CURRENT`, bytesOfCurrent);
      await expectError(Manifest.open(fs, DIR), "E_CORRUPT", message);
    }
  });

  test("a CURRENT naming a missing manifest is E_CORRUPT naming CURRENT and the missing file", async () => {
    const { fs } = await logged();
    fs.overwrite(`${DIR}/CURRENT`, encodeFrame(bytes("MANIFEST-7")));
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${DIR}/CURRENT is damaged .*: it names MANIFEST-7, which is missing`),
    );
  });

  test("a missing CURRENT beside a manifest with edits is E_CORRUPT, not a fresh start that would lose every table", async () => {
    const { fs } = await logged();
    await fs.remove(`${DIR}/CURRENT`);
    await expectError(
      Manifest.open(fs, DIR),
      "E_CORRUPT",
      new RegExp(`${DIR}/CURRENT is missing, yet ${DIR} holds MANIFEST-1`),
    );
    fs.overwrite(`${DIR}/MANIFEST-3`, fs.bytes(MANIFEST_1));
    await fs.remove(MANIFEST_1);
    await expectError(Manifest.open(fs, DIR), "E_CORRUPT", /CURRENT is missing, yet .* holds MANIFEST-3/);
  });
});
