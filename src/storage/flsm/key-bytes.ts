/**
 * The two forms a key takes in the FLSM engine: the string the API carries, and its UTF-8 bytes
 * (what entries, tables and ranges hold; byte order is the store's key order).
 */
export function keyBytes(key: string): Uint8Array {
  return Buffer.from(key, "utf8");
}

/** Keeps a leading U+FEFF, as a key may start with one; bad bytes become U+FFFD, as Buffer's decoding makes them. */
const UTF8 = new TextDecoder("utf-8", { ignoreBOM: true });

/**
 * The key's text. Decoded with a TextDecoder: a Buffer over `bytes.buffer` would make the engine
 * give each small typed array an ArrayBuffer of its own, which cost a scan a quarter of its time.
 */
export function keyText(bytes: Uint8Array): string {
  return UTF8.decode(bytes);
}

/** The smallest key after `bytes` in byte order: `bytes` followed by a zero byte (an exclusive start as an inclusive one). */
export function keyAfter(bytes: Uint8Array): Uint8Array {
  const after = new Uint8Array(bytes.byteLength + 1);
  after.set(bytes);
  return after;
}
