import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type DecodeRejection, decode, encode, UDP_PAYLOAD_BYTES_MAX } from "../../../src/cluster/gossip/codec.ts";
import type { Ack, Ack2, Delta, GossipMessage, Syn } from "../../../src/cluster/gossip/messages.ts";
import type { Digest } from "../../../src/cluster/gossip/node-state.ts";
import { bytes } from "../../helpers/bytes.ts";

const LIMITS = { clusterId: "c1", datagramBytesMax: 1400 };
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

const SYN: Syn = {
  kind: "syn",
  clusterId: "c1",
  senderId: "a",
  complete: true,
  digests: [
    { nodeId: "a", generation: 300, maxVersion: 5 },
    { nodeId: "b", generation: 0, maxVersion: 0 },
  ],
};
const ACK: Ack = {
  kind: "ack",
  clusterId: "c1",
  senderId: "b",
  requests: [{ nodeId: "a", generation: 0, maxVersion: 0 }],
  deltas: [
    {
      nodeId: "b",
      generation: 1_700_000_000_000,
      fromVersion: 0,
      entries: [
        { key: "grpc", value: "10.0.0.2:20001", version: 1 },
        { key: "zone", value: "küche ☕", version: 2 },
        { key: "hb", value: "12", version: 9 },
      ],
    },
  ],
};
const ACK2: Ack2 = {
  kind: "ack2",
  clusterId: "c1",
  senderId: "a",
  deltas: [{ nodeId: "a", generation: 300, fromVersion: 4, entries: [{ key: "hb", value: "3", version: 5 }] }],
};

/** A datagram around raw body bytes, with a true length field and checksum: for bodies encode refuses to write. */
function sealed(
  body: readonly number[],
  options: { kind?: number; clusterId?: string; senderId?: string } = {},
): Uint8Array {
  const ids = [...str8(options.clusterId ?? "c1"), ...str8(options.senderId ?? "a")];
  const size = 6 + ids.length + body.length + 4;
  const bytes = new Uint8Array(size);
  bytes.set([0x68, 0x67, 1, options.kind ?? 1, size & 0xff, size >> 8]);
  bytes.set([...ids, ...body], 6);
  return reseal(bytes);
}

/** Recomputes the checksum of a datagram edited on purpose. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(
    bytes.byteLength - 4,
    Bun.hash.crc32(bytes.subarray(0, bytes.byteLength - 4)),
    true,
  );
  return bytes;
}

function str8(text: string): number[] {
  const octets = bytes(text);
  return [octets.byteLength, ...octets];
}

function rejection(datagram: Uint8Array, limits = LIMITS): DecodeRejection | "accepted" {
  const result = decode(datagram, limits);
  return result.ok ? "accepted" : result.rejection;
}

describe("gossip datagram format", () => {
  test("a Syn is laid out byte by byte as the header comment says (frozen)", () => {
    expect(hex(encode(SYN))).toBe(
      [
        "6867", // magic "hg"
        "01", // format version
        "01", // kind: Syn
        "1a00", // length 26, u16 LE
        "026331", // cluster id "c1"
        "0161", // sender "a"
        "01", // flags: complete
        "02", // two digests
        "0161" + "ac02" + "05", // a, generation 300 (varint), max version 5
        "0162" + "00" + "00", // b, unknown
        "14e80063", // CRC-32 (zlib's) of the 22 bytes before, u32 LE
      ].join(""),
    );
  });

  test("Ack and Ack2 bodies: requests, then deltas of entries (key, version, value)", () => {
    expect(hex(encode(ACK2)).slice(12, -8)).toBe(
      ["026331", "0161", "01", "0161" + "ac02" + "04" + "01", "02" + "6862" + "05" + "0133"].join(""),
    );
    const ack = encode(ACK);
    expect(ack[3]).toBe(2);
    expect(ack.byteLength).toBe(ack[4]! | (ack[5]! << 8));
  });

  test.each([
    ["Syn", SYN],
    ["Ack", ACK],
    ["Ack2", ACK2],
  ])("%s round-trips", (_, message) => {
    expect(decode(encode(message), LIMITS)).toEqual({ ok: true, message });
  });
});

describe("round trip, property", () => {
  const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
  const key = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,31}$/);
  const value = fc.string({ unit: "grapheme", maxLength: 40 }).filter((text) => Buffer.byteLength(text) <= 255);
  const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const digest: fc.Arbitrary<Digest> = fc.oneof(
    fc.record({ nodeId: id, generation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), maxVersion: safe }),
    id.map((nodeId) => ({ nodeId, generation: 0, maxVersion: 0 })),
  );
  const delta: fc.Arbitrary<Delta> = fc
    .record({
      nodeId: id,
      generation: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      fromVersion: fc.integer({ min: 0, max: 2 ** 50 }),
      entries: fc.uniqueArray(fc.record({ key, value, step: fc.integer({ min: 1, max: 2 ** 20 }) }), {
        minLength: 1,
        maxLength: 32,
        selector: (e) => e.key,
      }),
    })
    .map(({ entries, ...rest }) => {
      let version = rest.fromVersion;
      return { ...rest, entries: entries.map(({ key, value, step }) => ({ key, value, version: (version += step) })) };
    });
  const digests = fc.uniqueArray(digest, { maxLength: 12, selector: (d) => d.nodeId });
  const deltas = fc.uniqueArray(delta, { maxLength: 4, selector: (d) => d.nodeId });
  const header = fc.record({ clusterId: id, senderId: id });
  const message: fc.Arbitrary<GossipMessage> = fc.oneof(
    fc.tuple(header, fc.boolean(), digest, digests).map(([h, complete, own, others]) => ({
      kind: "syn" as const,
      ...h,
      complete,
      digests: [{ ...own, nodeId: h.senderId }, ...others.filter((d) => d.nodeId !== h.senderId)],
    })),
    fc
      .tuple(header, digests, deltas)
      .map(([h, requests, ds]) => ({ kind: "ack" as const, ...h, requests, deltas: ds })),
    fc.tuple(header, deltas).map(([h, ds]) => ({ kind: "ack2" as const, ...h, deltas: ds })),
  );

  test("decode(encode(m)) is m, and its length field and size agree", () => {
    fc.assert(
      fc.property(message, (m) => {
        const datagram = encode(m);
        expect(datagram.byteLength).toBe(datagram[4]! | (datagram[5]! << 8));
        expect(decode(datagram, { clusterId: m.clusterId, datagramBytesMax: UDP_PAYLOAD_BYTES_MAX })).toEqual({
          ok: true,
          message: m,
        });
      }),
      { numRuns: 300 },
    );
  });

  test("any body behind a good header and checksum decodes or is refused as malformed, never throws; what decodes re-encodes to the same bytes", () => {
    const edits = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 });
    const fuzzed = fc.oneof(
      fc.record({
        kind: fc.integer({ min: 1, max: 3 }),
        senderId: fc.constant("a"),
        body: fc.uint8Array({ maxLength: 80 }).map((bytes) => [...bytes]),
      }),
      // Real bodies with a few bytes changed, so that the parser gets deep.
      fc.tuple(fc.constantFrom(SYN, ACK, ACK2), edits).map(([m, changes]) => {
        const body = [...encode(m).subarray(6 + str8(m.clusterId).length + str8(m.senderId).length, -4)];
        for (const [at, xor] of changes) body[at % body.length]! ^= xor;
        return { kind: { syn: 1, ack: 2, ack2: 3 }[m.kind], senderId: m.senderId, body };
      }),
    );
    fc.assert(
      fc.property(fuzzed, ({ kind, senderId, body }) => {
        const datagram = sealed(body, { kind, senderId });
        const result = decode(datagram, LIMITS);
        if (result.ok) expect(hex(encode(result.message))).toBe(hex(datagram));
        else expect(result.rejection).toBe("malformed");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("every way a datagram breaks is a typed rejection, never a throw", () => {
  const good = encode(ACK);

  test("cut short anywhere: truncated", () => {
    for (let length = 0; length < good.byteLength; length++)
      expect(rejection(good.subarray(0, length))).toBe("truncated");
  });

  test("any byte flipped, whatever the flip: refused", () => {
    for (let offset = 0; offset < good.byteLength; offset++) {
      for (const xor of [0x01, 0x80, 0xff]) {
        const damaged = good.slice();
        damaged[offset]! ^= xor;
        expect(rejection(damaged)).not.toBe("accepted");
      }
    }
  });

  test("of another cluster: foreign-cluster, even with a good checksum", () => {
    expect(rejection(encode({ ...ACK, clusterId: "c2" }))).toBe("foreign-cluster");
  });

  test("over the limit: oversized, before anything else is read", () => {
    const big = encode({
      ...ACK2,
      deltas: Array.from({ length: 40 }, (_, i) => ({ ...ACK2.deltas[0]!, nodeId: `node-${i}` })),
    });
    expect(big.byteLength).toBeGreaterThan(200);
    expect(rejection(big, { ...LIMITS, datagramBytesMax: 200 })).toBe("oversized");
    expect(rejection(new Uint8Array(70_000))).toBe("oversized");
  });

  test("random bytes: refused", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1500 }), (bytes) => {
        expect(rejection(bytes)).not.toBe("accepted");
      }),
      { numRuns: 1000 },
    );
  });

  const body = (...parts: (number | number[])[]) => parts.flat();
  const synOf = (...digests: number[][]) => body(0x01, digests.length, ...digests);
  const digestOf = (id: string, generation = 1, version = 1) => body(str8(id), generation, version);

  test.each<[string, Uint8Array, DecodeRejection]>([
    ["another magic", reseal(Uint8Array.from([0x48, 0x47, ...encode(SYN).subarray(2)])), "bad-magic"],
    ["another format version", reseal(Uint8Array.from([0x68, 0x67, 2, ...encode(SYN).subarray(3)])), "bad-version"],
    ["a checksum that does not match", Uint8Array.from([...encode(SYN).subarray(0, -1), 0]), "checksum"],
    ["an unknown kind", sealed(synOf(digestOf("a")), { kind: 9 }), "unknown-kind"],
    ["a length field shorter than the datagram", Uint8Array.from([...encode(SYN), 0]), "malformed"],
    ["bytes left over after the body", sealed([...synOf(digestOf("a")), 0]), "malformed"],
    ["unknown flags", sealed(body(0x03, 1, digestOf("a"))), "malformed"],
    ["a Syn that does not start with its sender", sealed(synOf(digestOf("b"), digestOf("a"))), "malformed"],
    ["a node twice in one list", sealed(synOf(digestOf("a"), digestOf("b"), digestOf("b"))), "malformed"],
    ["a count larger than the bytes could hold", sealed(body(0x01, 0xff, 0x7f, digestOf("a"))), "malformed"],
    ["a varint with a redundant zero byte", sealed(synOf(body(str8("a"), 0x81, 0x00, 1))), "malformed"],
    [
      "a varint of 9 bytes",
      sealed(synOf(body(str8("a"), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 1))),
      "malformed",
    ],
    [
      "a varint beyond 2^53",
      sealed(synOf(body(str8("a"), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 1))),
      "malformed",
    ],
    ["an id with a space", sealed(synOf(digestOf("a b")), { senderId: "a" }), "malformed"],
    ["an empty cluster id", sealed(synOf(digestOf("a")), { clusterId: "" }), "malformed"],
    ["a digest of generation 0 with a version", sealed(synOf(digestOf("a", 0, 3))), "malformed"],
    [
      "a string that is not UTF-8",
      sealed(body(1, body(str8("a"), 1, 0, 1, str8("hb"), 1, [2, 0xc3, 0x28])), { kind: 3 }),
      "malformed",
    ],
    [
      "a string running past the end",
      sealed(body(1, body(str8("a"), 1, 0, 1, str8("hb"), 1, [200, 0x41])), { kind: 3 }),
      "malformed",
    ],
    ["a delta of no entries", sealed(body(1, body(str8("a"), 1, 0, 0)), { kind: 3 }), "malformed"],
    [
      "a delta of generation 0",
      sealed(body(1, body(str8("a"), 0, 0, 1, str8("hb"), 1, str8("1"))), { kind: 3 }),
      "malformed",
    ],
    [
      "entry versions not above fromVersion",
      sealed(body(1, body(str8("a"), 1, 5, 1, str8("hb"), 5, str8("1"))), { kind: 3 }),
      "malformed",
    ],
    [
      "entry versions not ascending",
      sealed(body(1, body(str8("a"), 1, 0, 2, str8("hb"), 3, str8("1"), str8("grpc"), 2, str8("x"))), { kind: 3 }),
      "malformed",
    ],
    [
      "a key twice in a delta",
      sealed(body(1, body(str8("a"), 1, 0, 2, str8("hb"), 1, str8("1"), str8("hb"), 2, str8("2"))), { kind: 3 }),
      "malformed",
    ],
    [
      "a key in capitals",
      sealed(body(1, body(str8("a"), 1, 0, 1, str8("HB"), 1, str8("1"))), { kind: 3 }),
      "malformed",
    ],
  ])("%s: %s", (_, datagram, expected) => {
    expect(rejection(datagram)).toBe(expected);
  });

  test("the crafting helper makes datagrams the decoder accepts, so the cases above fail for their reason only", () => {
    expect(rejection(sealed(synOf(digestOf("a"), digestOf("b"))))).toBe("accepted");
    expect(
      rejection(
        sealed(body(1, body(str8("a"), 1, 0, 2, str8("hb"), 1, str8("1"), str8("grpc"), 2, str8("x"))), { kind: 3 }),
      ),
    ).toBe("accepted");
  });

  test("encode refuses what cannot be written: a string over 255 bytes", () => {
    expect(() =>
      encode({
        ...ACK2,
        deltas: [
          {
            nodeId: "a",
            generation: 1,
            fromVersion: 0,
            entries: [{ key: "zone", value: "x".repeat(256), version: 1 }],
          },
        ],
      }),
    ).toThrow(/over 255/);
  });
});
