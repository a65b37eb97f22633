/**
 * The HPACK Huffman code (RFC 7541, Appendix B), decoding only. The code is canonical: codes are
 * handed out in order of length, then of symbol, so each symbol's code length (5 to 30 bits) is
 * all it takes to rebuild it. One letter per symbol 0..256 (256 is EOS): A = 5 bits ... Z = 30.
 */
const CODE_LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";
const EOS = 256;
const MAX_LENGTH = 30;

/** Per code length: the first code of that length, how many there are, and where their symbols start. */
const firstCode = new Array<number>(MAX_LENGTH + 1).fill(0);
const countOf = new Array<number>(MAX_LENGTH + 1).fill(0);
const offsetOf = new Array<number>(MAX_LENGTH + 1).fill(0);
/** Symbols in canonical order (by length, then value). */
const symbols: number[] = [];
{
  const lengths = [...CODE_LENGTHS].map((letter) => letter.charCodeAt(0) - 65 + 5);
  for (let length = 5; length <= MAX_LENGTH; length++) {
    offsetOf[length] = symbols.length;
    for (let symbol = 0; symbol <= EOS; symbol++) if (lengths[symbol] === length) symbols.push(symbol);
    countOf[length] = symbols.length - offsetOf[length]!;
  }
  let code = 0;
  for (let length = 1; length <= MAX_LENGTH; length++) {
    firstCode[length] = code;
    code = (code + countOf[length]!) << 1;
  }
}

/** Decodes Huffman-coded octets (an HPACK string literal with its H bit set) into octets. */
export function huffmanDecode(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      length++;
      const index = code - firstCode[length]!;
      if (index < countOf[length]!) {
        const symbol = symbols[offsetOf[length]! + index]!;
        if (symbol === EOS) throw new Error("HPACK: EOS inside a Huffman string");
        out.push(symbol);
        code = 0;
        length = 0;
      } else if (length === MAX_LENGTH) throw new Error("HPACK: invalid Huffman code");
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones (the start of EOS).
  if (length > 7 || code !== (1 << length) - 1) throw new Error("HPACK: invalid Huffman padding");
  return Uint8Array.from(out);
}
