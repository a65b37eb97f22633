/**
 * The order of keys in the index: Unicode code point order, which equals the byte order of the keys'
 * UTF-8 encodings (etcd and every LSM order keys by bytes, so ranges mean the same everywhere).
 *
 * JavaScript's `<` compares UTF-16 code units, which differs from code point order only when one side
 * of the first difference is a surrogate (U+D800..U+DFFF, half of a code point above U+FFFF) and the
 * other lies in U+E000..U+FFFF. Those two ranges are swapped before comparing.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  // Surrogates belong after every BMP code unit; U+E000..U+FFFF move down to fill the gap.
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
