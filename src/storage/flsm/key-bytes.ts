/**
 * The two forms a key takes in the FLSM engine: the string the API carries, and its UTF-8 bytes
 * (what entries, tables and ranges hold; byte order is the store's key order).
 */
export function keyBytes(key: string): Uint8Array {
  return Buffer.from(key, "utf8");
}

export function keyText(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/** The smallest key after `bytes` in byte order: `bytes` followed by a zero byte (an exclusive start as an inclusive one). */
export function keyAfter(bytes: Uint8Array): Uint8Array {
  const after = new Uint8Array(bytes.byteLength + 1);
  after.set(bytes);
  return after;
}
