import { expect, test } from "bun:test";
import { fieldAt } from "../../src/server/request-field.ts";

/**
 * Where a request that does not decode went wrong, by the .proto's field names (request-field.ts):
 * the field whose bytes reach the decoder's position when it threw, through nested messages.
 */
const path = (rpc: string) => `/homekv_service.HomeKvService/${rpc}`;
const TOO_BIG = [...Array(9).fill(0xff), 0x01]; // 2^64 - 1 as a varint
const bytes = (...parts: number[][]) => Uint8Array.from(parts.flat());
const lengthDelimited = (field: number, body: number[]) => [(field << 3) | 2, body.length, ...body];

test("a top-level field, the number past it, and one the message does not have", () => {
  // GetRequest: keys = 1 ("a"), revision = 2 (too big): the decoder stops after the varint.
  const get = bytes(lengthDelimited(1, [0x61]), [0x10, ...TOO_BIG]);
  expect(fieldAt(path("Get"), get, get.length)).toBe("revision");
  // Stopped inside the first key: that key, by its index.
  const keys = bytes(lengthDelimited(1, [0x61]), lengthDelimited(1, [0x62, 0xff]));
  expect(fieldAt(path("Get"), keys, keys.length)).toBe("keys[1]");
  expect(fieldAt(path("Get"), keys, 2)).toBe("keys[0]");
  const unknown = bytes([(9 << 3) | 0, ...TOO_BIG]);
  expect(fieldAt(path("Get"), unknown, unknown.length)).toBe("field 9");
});

test("through nested messages, and where the bytes themselves end short", () => {
  // SetRequest.records[1].key is not UTF-8 (Record: key = 1, value = 2).
  const record = (key: number[]) => lengthDelimited(1, [...lengthDelimited(1, key), ...lengthDelimited(2, [0x76])]);
  const set = bytes(record([0x61]), record([0x62, 0xff]));
  const keyEnds = set.length - 3; // after records[1].key, before its value
  expect(fieldAt(path("Set"), set, keyEnds)).toBe("records[1].key");
  // TxnRequest.compares[1].number (Compare: key = 1, number = 5) too big.
  const compare = (number: number[]) => lengthDelimited(1, [...lengthDelimited(1, [0x6b]), 0x28, ...number]);
  const txn = bytes(compare([0x01]), compare(TOO_BIG));
  expect(fieldAt(path("Txn"), txn, txn.length)).toBe("compares[1].number");
  // A length past the end of the message: the field that claims it.
  const short = bytes([0x0a, 0x7f, 0x61]);
  expect(fieldAt(path("Set"), short, short.length)).toBe("records[0]");
  // A method the schema does not have, or a position no field reaches.
  expect(fieldAt("/nowhere.Service/Get", set, 1)).toBeUndefined();
  expect(fieldAt(path("Get"), Uint8Array.of(), 0)).toBeUndefined();
});
