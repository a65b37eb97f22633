import { ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { sealed } from "./format.ts";

/**
 * The Bloom filter on a table's user keys. Frozen format (docs/internals/flsm-table-format.md):
 *
 *   u8   k, the number of probes (1..30)
 *   m/8 bytes of bits; bit b is bit (b & 7) of byte (b >> 3), least significant first
 *   u32  CRC-32 of the bytes before it
 *
 * A key's probes come from one 64-bit hash, XXH64 of its bytes with seed 0 (Bun.hash.xxHash64):
 * h1 its low 32 bits, h2 its high 32 bits, probe i (0 ≤ i < k) sets bit (h1 + i·h2) mod m
 * (double hashing, Kirsch and Mitzenmacher). With b bits per key, k = round(b·ln 2) minimises
 * false positives: about 0.8% at 10 bits per key.
 */
export const BLOOM_PROBES_MAX = 30;
/** The smallest filter: a handful of keys still get a useful false-positive rate. */
const BLOOM_BITS_MIN = 64;

export function bloomProbes(bitsPerKey: number): number {
  return Math.min(BLOOM_PROBES_MAX, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

/** Collects the hashes of a table's keys as they stream by (8 bytes a key), then lays out the filter. */
export class BloomBuilder {
  private hashes = new Uint32Array(2 * 1024);
  private keys = 0;

  constructor(private readonly bitsPerKey: number) {}

  /** Adds a key; each key once (the writer adds a key when it first meets it). */
  add(key: Uint8Array): void {
    if (2 * this.keys + 2 > this.hashes.length) {
      const larger = new Uint32Array(2 * this.hashes.length);
      larger.set(this.hashes);
      this.hashes = larger;
    }
    const [h1, h2] = keyHash(key);
    this.hashes[2 * this.keys] = h1;
    this.hashes[2 * this.keys + 1] = h2;
    this.keys++;
  }

  /** The filter section, CRC included. */
  finish(): Uint8Array {
    const bytes = Math.ceil(Math.max(BLOOM_BITS_MIN, this.keys * this.bitsPerKey) / 8);
    const probes = bloomProbes(this.bitsPerKey);
    const bits = new Uint8Array(bytes);
    const m = bytes * 8;
    for (let i = 0; i < this.keys; i++) {
      const h1 = this.hashes[2 * i] as number;
      const h2 = this.hashes[2 * i + 1] as number;
      for (let probe = 0; probe < probes; probe++) {
        const bit = probeBit(h1, h2, probe, m);
        bits[bit >>> 3] = (bits[bit >>> 3] as number) | (1 << (bit & 7));
      }
    }
    return sealed(new ByteWriter(bytes + 8).u8(probes).raw(bits));
  }
}

/** A filter read back: `mayContain` is false only for a key the table does not hold. */
export class BloomFilter {
  private readonly bits: Uint8Array;
  private readonly probes: number;
  private readonly m: number;

  /** From the section's bytes without their CRC (checked by the caller). */
  constructor(payload: Uint8Array) {
    const probes = payload[0];
    if (probes === undefined || probes < 1 || probes > BLOOM_PROBES_MAX || payload.byteLength < 2)
      throw new FormatError(`a Bloom filter of ${payload.byteLength} bytes with ${probes} probes`);
    this.probes = probes;
    this.bits = payload.subarray(1);
    this.m = this.bits.byteLength * 8;
  }

  /** The bytes it holds in memory. */
  get memoryBytes(): number {
    return this.bits.byteLength;
  }

  /** `hash`: the key's, when the caller has it (one read asks the filters of many tables). */
  mayContain(key: Uint8Array, hash: BloomHash = keyHash(key)): boolean {
    const [h1, h2] = hash;
    for (let probe = 0; probe < this.probes; probe++) {
      const bit = probeBit(h1, h2, probe, this.m);
      if (((this.bits[bit >>> 3] as number) & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }
}

/** Splits a hash into its halves through memory: BigInt arithmetic (& and >>) cost more than the hash. */
const halves = new DataView(new ArrayBuffer(8));

/** A key's hash as every table's filter takes it: the two halves of its XXH64. */
export type BloomHash = readonly [number, number];

/** The two 32-bit halves of the key's XXH64 (seed 0): h1 low, h2 high. */
export function keyHash(key: Uint8Array): [number, number] {
  halves.setBigUint64(0, Bun.hash.xxHash64(key, 0n), true);
  return [halves.getUint32(0, true), halves.getUint32(4, true)];
}

/** Probe i's bit: (h1 + i·h2) mod m, exact (below 2^37, a safe integer). */
function probeBit(h1: number, h2: number, probe: number, m: number): number {
  return (h1 + probe * h2) % m;
}
