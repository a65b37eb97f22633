/**
 * A key (an index key: a JavaScript string, compared by UTF-16 code units) stored as bytes in a slab
 * instead of as a string object: a 16-character key takes 17 bytes there, where a string takes some
 * 60 bytes of garbage-collected heap. The first byte says how the units follow: one byte each when
 * every unit is below 256 (nearly every key), else two, little-endian.
 *
 *   "ab"      → 00 61 62
 *   "a\u20ac" → 01 61 00 ac 20
 *
 * Stored keys are compared with strings unit by unit, in place: the same order as native `<`.
 */
const NARROW = 0;
const WIDE = 1;

/** The bytes `key` takes stored. */
export function storedLength(key: string): number {
  let wide = false;
  for (let i = 0; i < key.length && !wide; i++) wide = key.charCodeAt(i) > 0xff;
  return 1 + key.length * (wide ? 2 : 1);
}

/**
 * Writes `key` stored at `start` of `slab`, in `length` (its storedLength) bytes: written in place,
 * with no buffer in between, since the index stores a key on every new key it meets.
 */
export function writeStored(key: string, slab: Uint8Array, start: number, length: number): void {
  const wide = length !== 1 + key.length;
  slab[start] = wide ? WIDE : NARROW;
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    if (wide) {
      slab[start + 1 + 2 * i] = unit & 0xff;
      slab[start + 2 + 2 * i] = unit >> 8;
    } else slab[start + 1 + i] = unit;
  }
}

/** Whether `bytes[start, start + count)` are all ASCII (below 0x80): UTF-8 that is its own units. */
export function isAscii(bytes: Uint8Array, start: number, count: number): boolean {
  for (let i = start; i < start + count; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

/**
 * Writes a key given as ASCII bytes (`from[fromStart, fromStart + count)`, each below 0x80: its UTF-8
 * encoding is its units) stored, in 1 + count bytes at `start` of `slab`: how a key read from a
 * file is stored without a string made of it.
 */
export function writeStoredAscii(from: Uint8Array, fromStart: number, count: number, slab: Uint8Array, start: number) {
  slab[start] = NARROW;
  for (let i = 0; i < count; i++) slab[start + 1 + i] = from[fromStart + i]!;
}

/** The unit count of the key stored at `start` (`length` bytes). */
function unitCount(slab: Uint8Array, start: number, length: number): number {
  return slab[start] === WIDE ? (length - 1) / 2 : length - 1;
}

function unitAt(slab: Uint8Array, start: number, wide: boolean, i: number): number {
  return wide ? slab[start + 1 + 2 * i]! | (slab[start + 2 + 2 * i]! << 8) : slab[start + 1 + i]!;
}

/**
 * Compares the stored key with `key` by code units: negative, zero or positive, as `<` orders them.
 * `shared`: units both are known to begin with alike (skipped).
 */
export function compareStored(slab: Uint8Array, start: number, length: number, key: string, shared = 0): number {
  const wide = slab[start] === WIDE;
  const units = unitCount(slab, start, length);
  const common = Math.min(units, key.length);
  for (let i = shared; i < common; i++) {
    const diff = unitAt(slab, start, wide, i) - key.charCodeAt(i);
    if (diff !== 0) return diff;
  }
  return units - key.length;
}

/** Compares the stored key with a key given as ASCII bytes (`from[fromStart, fromStart + count)`), as compareStored does. */
export function compareStoredAscii(
  slab: Uint8Array,
  start: number,
  length: number,
  from: Uint8Array,
  fromStart: number,
  count: number,
): number {
  const wide = slab[start] === WIDE;
  const units = unitCount(slab, start, length);
  const common = Math.min(units, count);
  for (let i = 0; i < common; i++) {
    const diff = unitAt(slab, start, wide, i) - from[fromStart + i]!;
    if (diff !== 0) return diff;
  }
  return units - count;
}

export function equalsStored(slab: Uint8Array, start: number, length: number, key: string): boolean {
  return unitCount(slab, start, length) === key.length && compareStored(slab, start, length, key) === 0;
}

/**
 * The key stored at `start` as UTF-8 bytes (a copy) when it is ASCII, which is then its own UTF-8;
 * undefined otherwise (the caller decodes it). Keys read out in bulk (a memtable's flush) skip the
 * string.
 */
export function asciiStored(slab: Uint8Array, start: number, length: number): Uint8Array | undefined {
  if (slab[start] === WIDE || !isAscii(slab, start + 1, length - 1)) return undefined;
  return slab.slice(start + 1, start + length);
}

export function decodeStored(slab: Uint8Array, start: number, length: number): string {
  const wide = slab[start] === WIDE;
  const units = unitCount(slab, start, length);
  let out = "";
  // In chunks: String.fromCharCode takes its units as arguments, and arguments are bounded.
  for (let from = 0; from < units; from += DECODE_CHUNK) {
    const codes = new Array<number>(Math.min(DECODE_CHUNK, units - from));
    for (let i = 0; i < codes.length; i++) codes[i] = unitAt(slab, start, wide, from + i);
    out += String.fromCharCode.apply(null, codes);
  }
  return out;
}

const DECODE_CHUNK = 8_192;
