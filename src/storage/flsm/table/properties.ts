import { ByteReader, ByteWriter } from "../../../io/format/bytes.ts";
import type { Entry } from "../entry.ts";
import { sealed } from "./format.ts";

/** What a table holds, read at open without touching a data block. */
export interface TableProperties {
  readonly entryCount: number;
  /** Distinct user keys. */
  readonly keyCount: number;
  readonly tombstoneCount: number;
  /** Bytes of the data blocks, their trailers included: the table's size less its metadata. */
  readonly dataBytes: number;
  readonly minRevision: number;
  readonly maxRevision: number;
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
}

/**
 * The properties section. Frozen format (docs/internals/flsm-table-format.md):
 *
 *   varint entryCount, varint keyCount, varint tombstoneCount, varint dataBytes,
 *   varint minRevision, varint maxRevision,
 *   varint length + bytes of smallestKey, varint length + bytes of largestKey
 *   u32 CRC-32 of the bytes before it
 */
export function encodeProperties(properties: TableProperties): Uint8Array {
  const { smallestKey, largestKey } = properties;
  const writer = new ByteWriter(64 + smallestKey.byteLength + largestKey.byteLength);
  writer.varint(properties.entryCount).varint(properties.keyCount).varint(properties.tombstoneCount);
  writer.varint(properties.dataBytes).varint(properties.minRevision).varint(properties.maxRevision);
  writer.varint(smallestKey.byteLength).raw(smallestKey).varint(largestKey.byteLength).raw(largestKey);
  return sealed(writer);
}

/** From the section's bytes without their CRC (checked by the caller). */
export function decodeProperties(payload: Uint8Array): TableProperties {
  const reader = new ByteReader(payload);
  return {
    entryCount: reader.varint(),
    keyCount: reader.varint(),
    tombstoneCount: reader.varint(),
    dataBytes: reader.varint(),
    minRevision: reader.varint(),
    maxRevision: reader.varint(),
    smallestKey: reader.raw(reader.varint()).slice(),
    largestKey: reader.raw(reader.varint()).slice(),
  };
}

/** Tallies the properties of the entries a writer takes, in internal-key order. */
export class PropertiesCollector {
  private entryCount = 0;
  private keyCount = 0;
  private tombstoneCount = 0;
  private minRevision = Number.POSITIVE_INFINITY;
  private maxRevision = 0;
  private smallestKey: Uint8Array | undefined;
  private largestKey: Uint8Array = new Uint8Array(0);

  /** `newKey`: the entry is the first of its key. */
  add(entry: Entry, newKey: boolean): void {
    this.entryCount++;
    if (newKey) this.keyCount++;
    if (entry.value === null) this.tombstoneCount++;
    this.minRevision = Math.min(this.minRevision, entry.revision);
    this.maxRevision = Math.max(this.maxRevision, entry.revision);
    this.smallestKey ??= entry.key;
    this.largestKey = entry.key;
  }

  get isEmpty(): boolean {
    return this.entryCount === 0;
  }

  properties(dataBytes: number): TableProperties {
    return {
      entryCount: this.entryCount,
      keyCount: this.keyCount,
      tombstoneCount: this.tombstoneCount,
      dataBytes,
      minRevision: this.minRevision,
      maxRevision: this.maxRevision,
      // Copies: the caller's entries stay the caller's.
      smallestKey: (this.smallestKey ?? this.largestKey).slice(),
      largestKey: this.largestKey.slice(),
    };
  }
}
