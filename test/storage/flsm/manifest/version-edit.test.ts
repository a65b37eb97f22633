import { describe, expect, test } from "bun:test";
import { FormatError } from "../../../../src/io/format/bytes.ts";
import { FRAME_HEADER_BYTES, readFrame } from "../../../../src/io/format/frame.ts";
import { decodeEdit, encodeEditFrame, type VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { table } from "./fixtures.ts";

/** One of every item, each field set to something distinct. */
const EVERY_ITEM: VersionEdit = [
  { kind: "add-guard", level: 1, key: bytes("g") },
  { kind: "add-table", table: table(3, 1, "g", "k", "g") },
  { kind: "add-table", table: table(4, 0, "a", "z") },
  { kind: "remove-table", number: 2, level: 0 },
  { kind: "next-file-number", number: 300 },
  { kind: "flushed-revision", revision: 70 },
  { kind: "compacted-revision", revision: 12 },
  { kind: "live-totals", keys: 130, valueBytes: 5 },
];

function payload(edit: VersionEdit): Uint8Array {
  return encodeEditFrame(edit).subarray(FRAME_HEADER_BYTES);
}

function hex(data: Uint8Array): string {
  return Buffer.from(data).toString("hex");
}

describe("version edit format", () => {
  test("every item kind encodes to one frame and decodes back equal", () => {
    const frame = encodeEditFrame(EVERY_ITEM);
    const read = readFrame(frame, 0);
    expect(read.kind).toBe("frame");
    expect(read.kind === "frame" && read.next).toBe(frame.byteLength);
    expect(decodeEdit(payload(EVERY_ITEM))).toEqual(EVERY_ITEM);
  });

  test("the bytes are frozen (docs/internals/flsm-manifest-format.md): a change here breaks every existing manifest", () => {
    expect(hex(payload(EVERY_ITEM))).toBe(
      "0108" + // edit, 8 items
        "03" +
        "01" +
        "0100000067" + // add guard, level 1, "g"
        "01" +
        "03" +
        "01" +
        "01" +
        "0100000067" + // add table 3, level 1, has guard, "g"
        "eb07" +
        "0100000067" +
        "010000006b" +
        "1e" +
        "23" +
        "04" + // 1003 bytes, "g".."k", revisions 30..35, 4 entries
        "01" +
        "04" +
        "00" +
        "00" +
        "ec07" +
        "0100000061" +
        "010000007a" +
        "28" +
        "2d" +
        "05" + // table 4, level 0, no guard
        "02" +
        "02" +
        "00" + // remove table 2 from level 0
        "04" +
        "ac02" + // next file number 300
        "05" +
        "46" + // flushed revision 70
        "06" +
        "0c" + // compacted revision 12
        "07" +
        "8201" +
        "05", // live totals: 130 keys, 5 value bytes
    );
  });

  test("an empty edit is valid (the count is zero)", () => {
    expect(decodeEdit(payload([]))).toEqual([]);
  });

  test("decoded keys are copies: they do not pin the file buffer they were read from", () => {
    const bytesRead = payload(EVERY_ITEM).slice();
    const edit = decodeEdit(bytesRead);
    bytesRead.fill(0);
    expect(edit).toEqual(EVERY_ITEM);
  });

  const damaged: [string, Uint8Array, RegExp][] = [
    ["an unknown payload type", Uint8Array.of(9, 0), /unknown manifest frame type 9/],
    ["an unknown item tag", Uint8Array.of(1, 1, 77, 0), /unknown version edit item tag 77 at 2/],
    ["stray bytes after the items", Uint8Array.of(1, 1, 4, 5, 0), /1 stray bytes/],
    ["a count the payload cannot hold", Uint8Array.of(1, 100, 4, 5), /100 edit items in 2 bytes/],
    ["a guard flag other than 0 or 1", Uint8Array.of(1, 1, 1, 3, 1, 2, 0, 0), /guard flag 2 at 2/],
    ["an item cut short", Uint8Array.of(1, 1, 3, 1, 5, 0, 0, 0), /needs 5 more bytes at 8/],
  ];
  for (const [what, bytesRead, message] of damaged) {
    test(`a payload with ${what} is a FormatError`, () => {
      expect(() => decodeEdit(bytesRead)).toThrow(FormatError);
      expect(() => decodeEdit(bytesRead)).toThrow(message);
    });
  }
});
