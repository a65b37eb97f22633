import type { TableMeta, VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";

/** Where the manifest tests keep a manifest (on the in-memory disk). */
export const DIR = "/data/flsm";

/** A table for manifest tests: keys from text, revisions and sizes made up from its number. */
export function table(number: number, level: number, smallest: string, largest: string, guard?: string): TableMeta {
  const meta = {
    number,
    level,
    fileBytes: 1000 + number,
    smallest: bytes(smallest),
    largest: bytes(largest),
    minRevision: number * 10,
    maxRevision: number * 10 + 5,
    entries: number + 1,
  };
  return guard === undefined ? meta : { ...meta, guard: bytes(guard) };
}

/** Three edits: a flush to level 0, a guard and a table below it, a compaction of the first. */
export const EDITS: VersionEdit[] = [
  [
    { kind: "add-table", table: table(1, 0, "a", "m") },
    { kind: "next-file-number", number: 2 },
  ],
  [
    { kind: "add-guard", level: 1, key: bytes("g") },
    { kind: "add-table", table: table(2, 1, "g", "k", "g") },
    { kind: "next-file-number", number: 3 },
    { kind: "flushed-revision", revision: 30 },
  ],
  [
    { kind: "remove-table", number: 1, level: 0 },
    { kind: "add-table", table: table(3, 1, "a", "f") },
    { kind: "next-file-number", number: 4 },
    { kind: "compacted-revision", revision: 7 },
  ],
];
