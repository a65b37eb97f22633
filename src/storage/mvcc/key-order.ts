/**
 * The order of keys in the index: Unicode code point order, which equals the byte order of the keys'
 * UTF-8 encodings (etcd and every LSM order keys by bytes, so ranges mean the same everywhere).
 *
 * JavaScript's native `<` compares UTF-16 code units. That differs from code point order only for
 * units at or above U+D800: surrogates (halves of code points above U+FFFF) must sort after
 * U+E000..U+FFFF, and `<` puts them before. So the index stores each key as an *index key* in which
 * those two ranges are swapped, and compares index keys with the native `<` — several times faster
 * than comparing code points in a loop, and done once per operation rather than once per comparison.
 * Nearly every key has no unit ≥ U+D800 and is its own index key (no copy).
 *
 *   U+E000..U+FFFF  →  U+D800..U+F7FF
 *   U+D800..U+DFFF  →  U+F800..U+FFFF
 */
const HIGH_UNIT = /[\uD800-\uFFFF]/; // no `u` flag: matches single code units, lone surrogates too

export function toIndexKey(key: string): string {
  if (!HIGH_UNIT.test(key)) return key;
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const unit = key.charCodeAt(i);
    out += String.fromCharCode(unit < 0xd800 ? unit : unit >= 0xe000 ? unit - 0x800 : unit + 0x2000);
  }
  return out;
}

export function fromIndexKey(indexKey: string): string {
  if (!HIGH_UNIT.test(indexKey)) return indexKey;
  let out = "";
  for (let i = 0; i < indexKey.length; i++) {
    const unit = indexKey.charCodeAt(i);
    out += String.fromCharCode(unit < 0xd800 ? unit : unit >= 0xf800 ? unit - 0x2000 : unit + 0x800);
  }
  return out;
}

/** Orders index keys (the B+ tree's comparator). */
export function compareIndexKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders keys by code point (= UTF-8 byte order). */
export function compareKeys(a: string, b: string): number {
  return compareIndexKeys(toIndexKey(a), toIndexKey(b));
}

/**
 * The first key after every key that starts with `prefix` (undefined: none, the range runs to the
 * end). Worked out on index keys, where the native order is the key order: bumping the last unit
 * below U+FFFF there is right even next to surrogates, where bumping the key itself would not be.
 */
export function prefixEnd(prefix: string): string | undefined {
  const indexKey = toIndexKey(prefix);
  for (let i = indexKey.length - 1; i >= 0; i--) {
    const unit = indexKey.charCodeAt(i);
    if (unit < 0xffff) return fromIndexKey(indexKey.slice(0, i) + String.fromCharCode(unit + 1));
  }
  return undefined;
}
