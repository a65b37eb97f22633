import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeMessages, encodeMessages, type GroupMessage } from "../../../src/cluster/raft/message-codec.ts";
import type { ConfChange, ConfState, Entry, Message, Snapshot } from "../../../src/cluster/raft/types.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";
import { bytes } from "../../helpers/bytes.ts";

const hex = (payload: Uint8Array) => Buffer.from(payload).toString("hex");
const unhex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));
const roundTrip = (batch: GroupMessage[]) => decodeMessages(encodeMessages(batch));

/** The decoder's verdict, so that an error other than a FormatError fails the test by its name. */
function failure(payload: Uint8Array): string {
  try {
    decodeMessages(payload);
    return "decoded";
  } catch (error) {
    if (error instanceof FormatError) return error.message;
    throw error;
  }
}

// --- generators: every message type, every field random ---

const id = fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }));
const num = fc.oneof(fc.nat(300), fc.maxSafeNat());
const envelope = { from: id, to: id, term: num };
/** Empty, small, and now and then one of 64 KiB and more (its length needs three bytes). */
const data = fc
  .oneof(
    { arbitrary: fc.uint8Array({ maxLength: 40 }), weight: 8 },
    { arbitrary: fc.tuple(fc.integer({ min: 65_536, max: 200_000 }), fc.nat(255)), weight: 1 },
  )
  .map((d) => (d instanceof Uint8Array ? d : new Uint8Array(d[0]).fill(d[1])));
const member = fc.record({
  name: fc.string({ minLength: 1, maxLength: 64 }),
  peerAddress: fc.string({ minLength: 1, maxLength: 320 }),
});
const confChange: fc.Arbitrary<ConfChange> = fc.record(
  { type: fc.constantFrom("addLearner", "addVoter", "remove"), node: id, member },
  { requiredKeys: ["type", "node"] },
);
/** An entry without its index: an append numbers them after its prevIndex. */
const entryBody = fc.oneof(
  fc.record({ term: num, data: fc.constant(null) }),
  fc.record({ term: num, data }),
  fc.record({ term: num, data: fc.constant(null), conf: confChange }),
);
const append = fc
  .record({
    type: fc.constant("append" as const),
    ...envelope,
    prevIndex: fc.oneof(fc.nat(300), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 20 })),
    prevTerm: num,
    commit: num,
    entries: fc.array(entryBody, { maxLength: 12 }),
  })
  .map((m) => ({ ...m, entries: m.entries.map((e, i): Entry => ({ ...e, index: m.prevIndex + 1 + i })) }));
const snapshot: fc.Arbitrary<Snapshot> = fc.oneof(
  fc.record({ index: num, term: num, data }),
  fc.record({
    index: num,
    term: num,
    data,
    conf: fc.tuple(fc.uniqueArray(id, { minLength: 1, maxLength: 9 }), fc.nat()).map(([ids, cut]) => ({
      voters: ids.slice(0, 1 + (cut % ids.length)),
      learners: ids.slice(1 + (cut % ids.length)),
    })),
  }),
);
const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    type: fc.constantFrom("preVote" as const, "vote" as const),
    ...envelope,
    lastIndex: num,
    lastTerm: num,
    transfer: fc.boolean(),
  }),
  fc.record({ type: fc.constantFrom("preVoteResp" as const, "voteResp" as const), ...envelope, reject: fc.boolean() }),
  append,
  fc.record({ type: fc.constant("appendResp" as const), ...envelope, index: num, reject: fc.constant(false as const) }),
  fc.record({
    type: fc.constant("appendResp" as const),
    ...envelope,
    index: num,
    reject: fc.constant(true as const),
    hintIndex: num,
    hintTerm: num,
  }),
  fc.record({ type: fc.constant("heartbeat" as const), ...envelope, commit: num, round: num }),
  fc.record({ type: fc.constant("heartbeatResp" as const), ...envelope, round: num }),
  fc.record({ type: fc.constant("quiesce" as const), ...envelope, commit: num }),
  fc.record({ type: fc.constant("readIndex" as const), ...envelope, request: fc.string({ unit: "binary" }) }),
  fc.record({
    type: fc.constant("readIndexResp" as const),
    ...envelope,
    request: fc.string({ unit: "binary" }),
    index: num,
  }),
  fc.record({ type: fc.constant("timeoutNow" as const), ...envelope }),
  fc.record({ type: fc.constant("snapshot" as const), ...envelope, snapshot }),
);
const batch = fc.array(fc.record({ group: id, message }), { maxLength: 8 });

// --- a fixed batch: one of every type, small numbers, so that its bytes can be read by eye ---

const SAMPLE: GroupMessage[] = [
  { group: 1, message: { type: "heartbeat", from: 1, to: 2, term: 3, commit: 200, round: 7 } },
  { group: 1, message: { type: "heartbeatResp", from: 2, to: 1, term: 3, round: 7 } },
  { group: 1, message: { type: "preVote", from: 3, to: 1, term: 4, lastIndex: 10, lastTerm: 2, transfer: false } },
  { group: 1, message: { type: "vote", from: 3, to: 2, term: 4, lastIndex: 10, lastTerm: 3, transfer: true } },
  { group: 1, message: { type: "preVoteResp", from: 1, to: 3, term: 4, reject: true } },
  { group: 1, message: { type: "voteResp", from: 2, to: 3, term: 4, reject: false } },
  {
    group: 2,
    message: {
      type: "append",
      ...{ from: 1, to: 2, term: 3, prevIndex: 5, prevTerm: 2, commit: 5 },
      entries: [
        { index: 6, term: 3, data: null },
        { index: 7, term: 3, data: bytes("ab") },
        { index: 8, term: 3, data: null, conf: { type: "addVoter", node: 4 } },
      ],
    },
  },
  { group: 2, message: { type: "appendResp", from: 2, to: 1, term: 3, index: 8, reject: false } },
  {
    group: 2,
    message: { type: "appendResp", from: 3, to: 1, term: 3, index: 5, reject: true, hintIndex: 4, hintTerm: 2 },
  },
  { group: 3, message: { type: "readIndex", from: 2, to: 1, term: 3, request: "r1" } },
  { group: 3, message: { type: "readIndexResp", from: 1, to: 2, term: 3, request: "r1", index: 9 } },
  { group: 3, message: { type: "timeoutNow", from: 1, to: 2, term: 3 } },
  {
    group: 3,
    message: {
      type: "snapshot",
      ...{ from: 1, to: 3, term: 3 },
      snapshot: { index: 9, term: 3, data: bytes("s"), conf: { voters: [1, 2], learners: [3] } },
    },
  },
  {
    group: 3,
    message: { type: "snapshot", from: 1, to: 3, term: 3, snapshot: { index: 0, term: 0, data: bytes("") } },
  },
  { group: 3, message: { type: "quiesce", from: 1, to: 2, term: 3, commit: 9 } },
];
/** Version and count, then a line a message: group · type · from · to · term · body (u32s little-endian). */
const SAMPLE_HEX = `
  01 0f
  01 07 01 02 03 c801 07
  01 08 02 01 03 07
  01 01 03 01 04 0a 02 00
  01 02 03 02 04 0a 03 01
  01 03 01 03 04 01
  01 04 02 03 04 00
  02 05 01 02 03 05 02 05 03  03 00  03 01 02000000 6162  03 02 02 0400000000000000
  02 06 02 01 03 08 00
  02 06 03 01 03 05 01 04 02
  03 09 02 01 03 02000000 7231
  03 0a 01 02 03 02000000 7231 09
  03 0b 01 02 03
  03 0c 01 03 03 09 03 01 02 01 02 01 03 01000000 73
  03 0c 01 03 03 00 00 00 00000000
  03 0d 01 02 03 09`;

describe("message codec: round trip", () => {
  test("property: any batch of any messages decodes to what was encoded", () => {
    fc.assert(
      fc.property(batch, (messages) => {
        expect(roundTrip(messages)).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });

  test("the empty batch, and a message with the largest safe numbers", () => {
    expect(roundTrip([])).toEqual([]);
    const max = Number.MAX_SAFE_INTEGER;
    const heartbeat: GroupMessage = {
      group: max,
      message: { type: "heartbeat", from: max, to: max, term: max, commit: max, round: max },
    };
    expect(roundTrip([heartbeat])).toEqual([heartbeat]);
  });

  test("decoded entry data is a copy: the payload's buffer can be reused", () => {
    const payload = encodeMessages([SAMPLE[6]!]).slice();
    const [decoded] = decodeMessages(payload);
    payload.fill(0);
    expect(decoded).toEqual(SAMPLE[6]!);
  });
});

describe("message codec: the frozen format", () => {
  test("a batch of one message of every type has these bytes", () => {
    expect(hex(encodeMessages(SAMPLE))).toBe(hex(unhex(SAMPLE_HEX)));
    expect(decodeMessages(unhex(SAMPLE_HEX))).toEqual(SAMPLE);
  });

  test("sizes: a heartbeat is 12 bytes in a batch of its own; 100 entries of 100 bytes add 6 bytes each", () => {
    const heartbeat: Message = { type: "heartbeat", from: 3, to: 1, term: 42, commit: 123_456, round: 1_000 };
    expect(encodeMessages([{ group: 1, message: heartbeat }]).byteLength).toBe(12);
    const entries = Array.from({ length: 100 }, (_, i) => ({
      index: 1_000_001 + i,
      term: 42,
      data: new Uint8Array(100),
    }));
    const message: Message = {
      type: "append",
      from: 1,
      to: 2,
      term: 42,
      prevIndex: 1_000_000,
      prevTerm: 42,
      commit: 999_990,
      entries,
    };
    expect(encodeMessages([{ group: 1, message }]).byteLength).toBe(2 + 5 + 3 + 1 + 3 + 1 + 100 * (1 + 1 + 4 + 100));
  });
});

describe("message codec: every way bytes can break is a FormatError", () => {
  const sample = unhex(SAMPLE_HEX);
  const patched = (at: number, ...replacement: number[]) => {
    const copy = new Uint8Array(sample.byteLength - 1 + replacement.length);
    copy.set(sample.subarray(0, at));
    copy.set(replacement, at);
    copy.set(sample.subarray(at + 1), at + replacement.length);
    return copy;
  };
  /** Where SAMPLE[k] starts in the sample's bytes (the count takes one byte for every prefix). */
  const start = (k: number) => encodeMessages(SAMPLE.slice(0, k)).byteLength;
  const FIRST_TYPE = 3;
  const APPEND = start(6);

  test("cut short at every offset", () => {
    for (let end = 0; end < sample.byteLength; end++) {
      expect(failure(sample.subarray(0, end))).not.toBe("decoded");
    }
  });

  test("an unknown version", () => {
    expect(failure(patched(0, 2))).toBe("unknown version 2 at byte 0");
  });

  test("an unknown message type", () => {
    expect(failure(patched(FIRST_TYPE, 14))).toBe("unknown message type 14 at byte 3");
    expect(failure(patched(FIRST_TYPE, 0))).toBe("unknown message type 0 at byte 3");
  });

  test("a flipped type byte never passes for another message", () => {
    // Heartbeat (7) read as a heartbeatResp, a vote, ...: the fields no longer line up, and the
    // count of messages or the bytes left over give it away.
    for (let code = 0; code < 256; code++) {
      if (code !== 7) expect(failure(patched(FIRST_TYPE, code))).not.toBe("decoded");
    }
  });

  test("trailing garbage", () => {
    expect(failure(new Uint8Array([...sample, 0]))).toBe(`1 bytes left over at byte ${sample.byteLength}`);
  });

  test("a message count larger than the bytes left could hold", () => {
    expect(failure(patched(1, 0x7f))).toMatch(/^127 messages at byte 1 cannot fit in the \d+ bytes left$/);
    expect(failure(unhex("01 ffffffffffffff0f"))).toMatch(/^9007199254740991 messages at byte 1 cannot fit/);
  });

  test("an entry count, or a data length, larger than the bytes left, before anything is allocated", () => {
    const count = APPEND + 8;
    expect(sample[count]).toBe(3);
    expect(failure(patched(count, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f))).toMatch(
      /entries at byte \d+ cannot fit/,
    );
    const length = count + 5; // the second entry's: after the first's term and kind, its term and kind
    expect(sample[length]).toBe(2);
    // Its u32 length 2 made 0xff000002 by its high byte.
    expect(failure(patched(length + 3, 0xff))).toBe(
      `needs ${0xff000002} more bytes at ${length + 4} of ${sample.byteLength}`,
    );
  });

  test("entries whose indexes would pass 2^53", () => {
    const message: Message = {
      type: "append",
      from: 1,
      to: 2,
      term: 1,
      prevIndex: 2 ** 53 - 2,
      prevTerm: 1,
      commit: 0,
      entries: [],
    };
    const payload = encodeMessages([{ group: 1, message }]);
    // Claim two empty entries and supply them: the second would be entry 2^53.
    const twoEntries = new Uint8Array([...payload.subarray(0, -1), 2, 1, 0, 1, 0]);
    expect(failure(twoEntries)).toMatch(/2 entries at byte \d+ pass 2\^53/);
  });

  test("a varint with a redundant zero byte, one longer than 8 bytes, one past 2^53", () => {
    // The first message's group, 1, as 0x81 0x00.
    expect(failure(patched(2, 0x81, 0x00))).toBe("varint at 2 ends in a redundant zero byte");
    expect(failure(patched(2, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01))).toBe(
      "varint at 2 is longer than 8 bytes",
    );
    expect(failure(patched(2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10))).toBe("varint at 2 is beyond 2^53");
  });

  test("a group, sender or receiver id of 0", () => {
    expect(failure(patched(2, 0))).toBe("group 0 at byte 2: ids are positive");
    expect(failure(patched(4, 0))).toBe("sender 0 at byte 4: ids are positive");
    expect(failure(patched(5, 0))).toBe("receiver 0 at byte 5: ids are positive");
  });

  test("a flag other than 0 or 1", () => {
    const transfer = start(2) + 7; // after group, type, from, to, term, lastIndex, lastTerm
    expect(sample.subarray(transfer - 7, transfer + 1)).toEqual(unhex("01 01 03 01 04 0a 02 00"));
    expect(failure(patched(transfer, 2))).toBe(`flag 2 at byte ${transfer} is neither 0 nor 1`);
  });

  test("an unknown entry kind, an unknown configuration change, a change of node 0", () => {
    const entryKind = APPEND + 10; // the first entry: term 3, kind 0
    expect(sample.subarray(entryKind - 1, entryKind + 1)).toEqual(unhex("03 00"));
    expect(failure(patched(entryKind, 4))).toBe(`unknown entry kind 4 at byte ${entryKind} (index 6)`);
    const conf = entryKind + 10; // the third entry's kind, after the second's 10 bytes
    expect(sample.subarray(conf, conf + 3)).toEqual(unhex("02 02 04"));
    expect(failure(patched(conf + 1, 4))).toBe(`unknown configuration change at byte ${conf + 1} (index 8)`);
    expect(failure(patched(conf + 2, 0))).toBe(`configuration change of node 0 at byte ${conf + 2} (index 8)`);
  });

  test("a read request id that is not UTF-8", () => {
    const at = start(9) + 5; // after group, type, from, to, term
    expect(failure(patched(at + 4, 0xff))).toBe(`string at ${at} is not UTF-8`);
  });

  test("a snapshot's configuration with no voter, or a node in it twice", () => {
    const snapshot = (conf: ConfState) =>
      encodeMessages([
        {
          group: 1,
          message: {
            type: "snapshot",
            from: 1,
            to: 2,
            term: 1,
            snapshot: { index: 1, term: 1, data: bytes(""), conf },
          },
        },
      ]);
    // Encoding such a configuration is a bug (an assert); the bytes are patched from a good one.
    const good = snapshot({ voters: [1, 2], learners: [3] });
    const at = hex(good).indexOf("0201020103") / 2;
    const withVoters = (...ids: number[]) =>
      new Uint8Array([...good.subarray(0, at), ...ids, ...good.subarray(at + 5)]);
    expect(failure(withVoters(0, 1, 3))).toBe(`the snapshot's configuration at byte ${at - 1}: no voter`);
    expect(failure(withVoters(2, 1, 3, 1, 3))).toBe(
      `the snapshot's configuration at byte ${at - 1}: a node is listed twice in 1,3,3`,
    );
    expect(() => snapshot({ voters: [], learners: [3] })).toThrow("no voter");
  });

  test("property: random damage to a batch is a FormatError, or bytes that encode back to themselves", () => {
    // Every value has one encoding, so whatever decodes is exactly what encoding it gives back.
    fc.assert(
      fc.property(
        batch,
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        (messages, flips) => {
          const payload = encodeMessages(messages).slice();
          for (const [at, value] of flips) payload[at % payload.byteLength] = value;
          if (failure(payload) === "decoded") expect(hex(encodeMessages(decodeMessages(payload)))).toBe(hex(payload));
        },
      ),
      { numRuns: 500 },
    );
  });
});
