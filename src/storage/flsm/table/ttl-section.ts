import { ByteReader, ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { sharedPrefixBytes } from "./block-builder.ts";
import { sealed } from "./format.ts";

/** A version with a deadline: what the engine reloads at start to expire keys, without reading data blocks. */
export interface TableExpiry {
  readonly key: Uint8Array;
  readonly revision: number;
  readonly expiresAtMs: number;
}

/**
 * The TTL section: every entry of the table that has a deadline, in internal-key order. Frozen
 * format (docs/internals/flsm-table-format.md):
 *
 *   varint n, then per entry:
 *     varint shared, varint unshared, the unshared bytes   key, prefix-compressed against the previous one
 *     varint revision, varint expiresAtMs
 *   u32 CRC-32 of the bytes before it
 *
 * The writer holds this section until the table is finished: bytes in proportion to the entries
 * with a deadline (their keys' new bytes and two varints), never their values.
 */
export class TtlSectionBuilder {
  private readonly out = new ByteWriter(256);
  private previousKey: Uint8Array = new Uint8Array(0);
  private count = 0;

  add(key: Uint8Array, revision: number, expiresAtMs: number): void {
    const shared = sharedPrefixBytes(this.previousKey, key);
    this.out
      .varint(shared)
      .varint(key.byteLength - shared)
      .raw(key.subarray(shared));
    this.out.varint(revision).varint(expiresAtMs);
    this.previousKey = key;
    this.count++;
  }

  get entryCount(): number {
    return this.count;
  }

  finish(): Uint8Array {
    const body = this.out.written();
    return sealed(new ByteWriter(body.byteLength + 16).varint(this.count).raw(body));
  }
}

/** The section's entries, from its bytes without their CRC (checked by the caller). */
export function decodeTtlSection(payload: Uint8Array): TableExpiry[] {
  const reader = new ByteReader(payload);
  const count = reader.varint();
  const expiries: TableExpiry[] = [];
  let previousKey = new Uint8Array(0);
  for (let i = 0; i < count; i++) {
    const shared = reader.varint();
    if (shared > previousKey.byteLength)
      throw new FormatError(`TTL entry ${i} shares ${shared} bytes of a shorter key`);
    const suffix = reader.raw(reader.varint());
    const key = new Uint8Array(shared + suffix.byteLength);
    key.set(previousKey.subarray(0, shared));
    key.set(suffix, shared);
    expiries.push({ key, revision: reader.varint(), expiresAtMs: reader.varint() });
    previousKey = key;
  }
  return expiries;
}
