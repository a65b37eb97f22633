import type { TableMeta } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";

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
