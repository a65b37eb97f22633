import { describe, expect, test } from "bun:test";
import { readEntryBody, writeEntryBody } from "../../../src/cluster/raft/entry-format.ts";
import type { Entry } from "../../../src/cluster/raft/types.ts";
import { ByteReader, ByteWriter, FormatError } from "../../../src/io/format/bytes.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const unhex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"));

function body(entry: Entry): Uint8Array {
  const w = new ByteWriter();
  writeEntryBody(w, entry);
  return w.written().slice();
}

/** The reader's verdict on a body, whole: what it decoded (and that nothing was left), or its FormatError. */
function read(bytes: Uint8Array): Entry | string {
  const r = new ByteReader(bytes);
  try {
    const entry = readEntryBody(r, 7, 2);
    return r.remaining === 0 ? entry : `${r.remaining} bytes left`;
  } catch (error) {
    if (error instanceof FormatError) return error.message;
    throw error;
  }
}

const joining: Entry = {
  index: 7,
  term: 2,
  data: null,
  conf: { type: "addLearner", node: 0x0a0b0c, member: { name: "n4", peerAddress: "127.0.0.1:20014" } },
};

describe("a configuration change naming its member (entry kind 3)", () => {
  test("is written byte for byte as the format says (frozen)", () => {
    expect(hex(body(joining))).toBe(
      // kind 3 · type 1 (add learner) · u64 node · u32 2 "n4" · u32 15 "127.0.0.1:20014"
      "03 01 0c0b0a0000000000 02000000 6e34 0f000000 3132372e302e302e313a3230303134".replace(/ /g, ""),
    );
    expect(read(body(joining))).toEqual(joining);
  });

  test("a change without a member is still kind 2, as logs written before kind 3 hold it", () => {
    const old: Entry = { index: 7, term: 2, data: null, conf: { type: "remove", node: 5 } };
    expect(hex(body(old))).toBe("02030500000000000000");
    expect(read(unhex("02030500000000000000"))).toEqual(old);
  });

  const valid = hex(body(joining));
  test.each([
    ["cut after the kind", valid.slice(0, 2), /needs 1 more bytes/],
    ["cut inside the node", valid.slice(0, 10), /needs 8 more bytes/],
    ["cut inside the name", valid.slice(0, 30), /needs 2 more bytes/],
    ["without its peer address", valid.slice(0, 32), /needs 4 more bytes/],
    ["an unknown change type", `0309${valid.slice(4)}`, /unknown configuration change at byte 1/],
    ["node 0", `0301${"00".repeat(8)}${valid.slice(20)}`, /configuration change of node 0/],
    ["an empty name", `0301${valid.slice(4, 20)}00000000${valid.slice(32)}`, /member name of 0 characters at byte 10/],
    [
      "a name of 65 characters",
      `0301${valid.slice(4, 20)}41000000${"61".repeat(65)}${valid.slice(32)}`,
      /member name of 65 characters/,
    ],
    ["an empty peer address", `${valid.slice(0, 32)}00000000`, /peer address of 0 characters at byte 16/],
    ["a name that is not UTF-8", `0301${valid.slice(4, 20)}02000000ff6e${valid.slice(32)}`, /not UTF-8/],
  ])("%s is refused", (_, bytes, error) => {
    expect(read(unhex(bytes))).toMatch(error);
  });

  test("a byte flipped in the kind is another kind or refused, never this change", () => {
    for (let bit = 0; bit < 8; bit++) {
      const bytes = unhex(valid);
      bytes[0]! ^= 1 << bit;
      const verdict = read(bytes);
      expect(verdict).not.toEqual(joining);
    }
  });

  test("the writer refuses what the reader would refuse (a name over 64 characters)", () => {
    const long: Entry = {
      ...joining,
      conf: { ...joining.conf!, member: { name: "a".repeat(65), peerAddress: "h:1" } },
    };
    expect(() => body(long)).toThrow(/member name/);
  });
});
