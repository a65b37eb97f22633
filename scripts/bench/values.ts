/**
 * Values for a load, as `--values` names them:
 *   half    half random printable bytes and half a repeat of them, as LevelDB's db_bench makes
 *           them: they compress to about half (both FLSM and LevelDB compress their tables, and
 *           values of zeros would measure only the compressors)
 *   random  random printable bytes (about 6.6 bits a byte: a compressor's entropy stage gains a little)
 *   zeros   zeros but the first byte (each value distinct from the last)
 */
export type ValueKind = "half" | "random" | "zeros";

export function valueKind(name: string): ValueKind {
  if (name !== "half" && name !== "random" && name !== "zeros")
    throw new Error(`--values must be half, random or zeros, not ${name}`);
  return name;
}

/** The values of a load, one after another, each distinct from the last. */
export function valueSource(kind: ValueKind, valueSize: number, random: () => number): () => Uint8Array {
  if (kind === "zeros") {
    const value = new Uint8Array(valueSize);
    return () => {
      value[0] = (value[0]! + 1) & 0xff;
      return value.slice();
    };
  }
  // A pool of values to take slices of at moving offsets (as db_bench does), so that making a value
  // costs the load loop a copy, not a random byte each.
  const pool = new Uint8Array(Math.max(1 << 20, 2 * valueSize));
  const unique = kind === "half" ? Math.ceil(valueSize / 2) : valueSize;
  for (let at = 0; at < pool.length; at += valueSize) {
    const piece = pool.subarray(at, at + valueSize);
    for (let i = 0; i < piece.length; i++) piece[i] = i < unique ? 32 + Math.floor(random() * 95) : piece[i - unique]!;
  }
  let offset = 0;
  return () => {
    if (offset + valueSize > pool.length) offset = 0;
    const value = pool.slice(offset, offset + valueSize);
    offset += 1 + Math.floor(random() * 97);
    return value;
  };
}
