/**
 * The two forms a key takes in the FLSM engine: the string the API carries, and its UTF-8 bytes
 * (what entries, tables and ranges hold; byte order is the store's key order).
 */
export function keyBytes(key: string): Uint8Array {
  return Buffer.from(key, "utf8");
}

/**
 * The UTF-8 bytes of a range's bound, which may end in a lone high surrogate: a prefix's end worked
 * out in code point order (key-order.ts prefixEnd: "p\uffff" ends at "p\ud800", after every U+FFFF
 * and before U+10000). Such a unit has no UTF-8 (`keyBytes` would make it U+FFFD, which sorts before
 * the prefix); no key lies between it and the first code point it starts, whose bytes bound the same
 * keys.
 */
export function boundBytes(bound: string): Uint8Array {
  const last = bound.charCodeAt(bound.length - 1);
  if (!(last >= 0xd800 && last <= 0xdbff)) return keyBytes(bound);
  return keyBytes(bound.slice(0, -1) + String.fromCodePoint(0x10000 + ((last - 0xd800) << 10)));
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
