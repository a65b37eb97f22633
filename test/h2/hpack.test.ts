import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { encodeLiterals, HpackDecoder } from "../../src/h2/hpack.ts";
import { huffmanDecode } from "../../src/h2/huffman.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s/g, ""), "hex");
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString("latin1");

describe("Huffman decoding (RFC 7541, Appendix B)", () => {
  test("the RFC's examples (C.4, C.6) decode to their text", () => {
    expect(latin1(huffmanDecode(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")))).toBe("www.example.com");
    expect(latin1(huffmanDecode(hex("a8eb 1064 9cbf")))).toBe("no-cache");
    expect(latin1(huffmanDecode(hex("25a8 49e9 5bb8 e8b4 bf")))).toBe("custom-value");
    expect(latin1(huffmanDecode(hex("6402")))).toBe("302");
    expect(latin1(huffmanDecode(hex("d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff")))).toBe(
      "Mon, 21 Oct 2013 20:13:21 GMT",
    );
    expect(latin1(huffmanDecode(new Uint8Array(0)))).toBe("");
  });

  test("padding longer than 7 bits, padding that is not all ones, and EOS itself are refused", () => {
    expect(() => huffmanDecode(hex("a8eb 1064 9cbf ff"))).toThrow(/padding/);
    expect(() => huffmanDecode(hex("a8eb 1064 9cbe"))).toThrow(/padding/);
    expect(() => huffmanDecode(hex("ffff ffff"))).toThrow(/EOS/);
  });
});

describe("HPACK decoder (RFC 7541, Appendix C)", () => {
  test("C.3: three requests without Huffman coding share one dynamic table", () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))).toEqual([
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ]);
    // 0xbe: index 62, the first dynamic entry (":authority" from the request before).
    expect(decoder.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865"))).toContainEqual(["cache-control", "no-cache"]);
    expect(decoder.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"))).toEqual([
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ]);
  });

  test("C.4: the same requests with Huffman coding", () => {
    const decoder = new HpackDecoder();
    expect(decoder.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))).toContainEqual([
      ":authority",
      "www.example.com",
    ]);
    expect(decoder.decode(hex("8286 84be 5886 a8eb 1064 9cbf"))).toContainEqual(["cache-control", "no-cache"]);
    expect(decoder.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))).toContainEqual([
      "custom-key",
      "custom-value",
    ]);
  });

  test("entries are evicted oldest first when the table is full, and a table size update evicts too", () => {
    const decoder = new HpackDecoder();
    // Literal with incremental indexing, new name: 0x40, name, value. Each entry: 1 + 2000 + 32 octets.
    const literal = (name: string, value: string) => {
      const valueLength =
        value.length < 127 ? Buffer.from([value.length]) : Buffer.from([0x7f, ...varint(value.length - 127)]);
      return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), valueLength, Buffer.from(value)]);
    };
    const big = "v".repeat(2000);
    decoder.decode(Buffer.concat([literal("a", big), literal("b", big)])); // 2 × 2033 = 4066 ≤ 4096
    expect(decoder.decode(Buffer.from([0xbe, 0xbf]))).toEqual([
      ["b", big],
      ["a", big],
    ]);
    decoder.decode(literal("c", big)); // "a" goes
    expect(decoder.decode(Buffer.from([0xbe, 0xbf]))).toEqual([
      ["c", big],
      ["b", big],
    ]);
    expect(() => decoder.decode(Buffer.from([0xc0]))).toThrow(/not in the table/);
    // Size update to 0 empties the table.
    expect(() => decoder.decode(Buffer.from([0x20, 0xbe]))).toThrow(/not in the table/);
  });

  test("an entry larger than the whole table empties it and is not added", () => {
    const decoder = new HpackDecoder();
    decoder.decode(Buffer.from([0x40, 0x01, 0x61, 0x01, 0x62])); // a: b
    const huge = "x".repeat(5000);
    const block = Buffer.concat([Buffer.from([0x40, 0x01, 0x63, 0x7f, ...varint(5000 - 127)]), Buffer.from(huge)]);
    expect(decoder.decode(block)).toEqual([["c", huge]]);
    expect(() => decoder.decode(Buffer.from([0xbe]))).toThrow(/not in the table/);
  });

  test("a table size update above the announced size, a cut string and a cut integer are errors", () => {
    expect(() => new HpackDecoder().decode(Buffer.from([0x3f, 0xe2, 0x1f]))).toThrow(/over the 4096 allowed/); // 31 + 4066
    expect(() => new HpackDecoder().decode(Buffer.from([0x00, 0x05, 0x61]))).toThrow(/cut short/);
    expect(() => new HpackDecoder().decode(Buffer.from([0xff, 0x80]))).toThrow(/cut short/);
  });

  test("table size updates open a block: two there are taken, one after a header field is an error", () => {
    const decoder = new HpackDecoder();
    // 0x20 then 0x3f 0xe1 0x1f: sizes 0 then 4096 (RFC 7541, 4.2 allows both at the start); 0x82: :method GET.
    expect(decoder.decode(Buffer.from([0x20, 0x3f, 0xe1, 0x1f, 0x82]))).toEqual([[":method", "GET"]]);
    expect(() => decoder.decode(Buffer.from([0x82, 0x20]))).toThrow(/size update after a header field/);
  });

  test("a block decoded again at the same table decodes the same; a reference to the table follows its changes", () => {
    const decoder = new HpackDecoder();
    const literals = encodeLiterals([
      [":path", "/homekv_service.HomeKvService/Get"],
      ["grpc-timeout", "5000m"],
    ]);
    const first = decoder.decode(literals);
    expect(decoder.decode(Buffer.from(literals))).toBe(first); // remembered by its bytes
    // 0x40: a literal with incremental indexing, new name "x"; 0xbe: the first dynamic entry.
    const insert = (value: string) => Buffer.from([0x40, 0x01, 0x78, value.length, ...Buffer.from(value)]);
    const reference = Buffer.from([0xbe]);
    decoder.decode(insert("1"));
    expect(decoder.decode(reference)).toEqual([["x", "1"]]);
    expect(decoder.decode(reference)).toEqual([["x", "1"]]);
    decoder.decode(insert("2"));
    expect(decoder.decode(reference)).toEqual([["x", "2"]]);
    // A block over the list bound is refused however often it comes, and the same block within a wider one is not.
    expect(decoder.decodeWithin(literals, 40)).toBeUndefined();
    expect(decoder.decodeWithin(literals, 40)).toBeUndefined();
    expect(decoder.decodeWithin(literals, 4_096)).toEqual(first);
  });

  test("property: what encodeLiterals writes decodes back to the same headers", () => {
    const octets = fc.string({
      unit: fc.integer({ min: 0, max: 255 }).map((code) => String.fromCharCode(code)),
      maxLength: 300,
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.oneof(fc.constantFrom(":path", "content-type", "te", "authorization"), octets), octets), {
          maxLength: 20,
        }),
        (headers) => {
          expect(new HpackDecoder().decode(encodeLiterals(headers))).toEqual(headers);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** The continuation octets of an HPACK integer past its prefix. */
function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out.push(value);
  return out;
}
