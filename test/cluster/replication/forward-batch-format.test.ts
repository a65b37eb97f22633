import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeForwardAnswer,
  decodeForwardBatch,
  encodeForwardAnswer,
  encodeForwardBatch,
} from "../../../src/cluster/replication/forward-batch-format.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";

test("property: a batch of forwarded writes decodes to the entries encoded, in order", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }), (entries) => {
      expect(decodeForwardBatch(encodeForwardBatch(entries))).toEqual(entries);
    }),
  );
});

test("a batch cut short, with bytes after it, or with a count past its bytes is a FormatError", () => {
  const bytes = encodeForwardBatch([new Uint8Array([1, 2, 3]), new Uint8Array([4])]);
  for (let cut = 0; cut < bytes.byteLength; cut++)
    expect(() => decodeForwardBatch(bytes.subarray(0, cut))).toThrow(FormatError);
  expect(() => decodeForwardBatch(new Uint8Array([...bytes, 0]))).toThrow(FormatError);
  expect(() => decodeForwardBatch(new Uint8Array([100, 0]))).toThrow(FormatError);
});

test("an answer says where the accepted entries went, and why the rest were refused", () => {
  const whole = { firstIndex: 41, term: 3, accepted: 5 };
  expect(decodeForwardAnswer(encodeForwardAnswer(whole), 5)).toEqual(whole);
  const refusal = new HomeKvError("E_NOT_LEADER", "this member is not the leader");
  const part = decodeForwardAnswer(encodeForwardAnswer({ firstIndex: 41, term: 3, accepted: 2, refusal }), 5);
  expect(part).toMatchObject({ firstIndex: 41, term: 3, accepted: 2 });
  expect(part.refusal).toBeInstanceOf(HomeKvError);
  expect([part.refusal?.code, part.refusal?.message]).toEqual(["E_NOT_LEADER", "this member is not the leader"]);
  // More accepted than were sent, or a refusal missing, is damage.
  expect(() => decodeForwardAnswer(encodeForwardAnswer(whole), 4)).toThrow(FormatError);
  expect(() => decodeForwardAnswer(encodeForwardAnswer(whole), 6)).toThrow(FormatError);
});
