import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A table's metadata from "first…last" keys and its revision span; its size is 100 bytes per number unless given. */
export function table(number: number, range: string, revisions: [number, number], sizeBytes = 100 * number): TableMeta {
  const [smallest, largest] = range.split("…") as [string, string];
  return {
    number,
    sizeBytes,
    smallest: bytes(smallest),
    largest: bytes(largest),
    minRevision: revisions[0],
    maxRevision: revisions[1],
    entries: 10,
  };
}

export const numbers = (tables: readonly TableMeta[]): number[] => tables.map((t) => t.number);
