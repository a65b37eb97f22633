import { expect, test } from "bun:test";
import {
  GetResponse,
  HomeKvServiceService,
  ScanResponse,
  TxnResponse,
  WatchEvent_Type,
  WatchResponse,
} from "../../src/gen/homekv_service.ts";
import { encodeOnce, withResponsesEncodedOnce } from "../../src/server/response-encoding.ts";

/**
 * The answers that carry values are encoded once (src/server/response-encoding.ts): the same bytes
 * as ts-proto's own responseSerialize, in a Buffer that is exactly the message (not a view of a
 * larger writer buffer, nor of a buffer the next answer writes over), whatever came before.
 */

const record = (key: string, bytes: number, fill: number) => ({
  key,
  value: new Uint8Array(bytes).fill(fill),
  modRevision: 7,
  createRevision: 3,
  version: 2,
  ttlMs: 0,
});

const definition = withResponsesEncodedOnce(HomeKvServiceService, {
  get: GetResponse,
  scan: ScanResponse,
  txn: TxnResponse,
  watch: WatchResponse,
});

test("each wrapped method encodes its answers byte for byte as ts-proto does, into a Buffer of their own", () => {
  const get = GetResponse.fromPartial({ records: [record("a", 1_000_000, 1), record("b", 10, 2)], revision: 9 });
  const scan = ScanResponse.fromPartial({ records: [record("c", 70_000, 3)], revision: 9, continuation: "c" });
  const txn = TxnResponse.fromPartial({ succeeded: true, revision: 9 });
  const watch = WatchResponse.fromPartial({
    events: [{ type: WatchEvent_Type.PUT, record: record("d", 300_000, 4), prevValue: new Uint8Array([5]) }],
    revision: 9,
  });
  const cases = [
    [definition.get.responseSerialize(get), HomeKvServiceService.get.responseSerialize(get)],
    [definition.scan.responseSerialize(scan), HomeKvServiceService.scan.responseSerialize(scan)],
    [definition.txn.responseSerialize(txn), HomeKvServiceService.txn.responseSerialize(txn)],
    [definition.watch.responseSerialize(watch), HomeKvServiceService.watch.responseSerialize(watch)],
  ] as const;
  for (const [once, generated] of cases) {
    expect(Buffer.isBuffer(once)).toBe(true);
    expect(once.equals(generated)).toBe(true);
    expect(once.buffer.byteLength).toBe(once.byteLength);
  }
  // Methods not named keep the generated serializer.
  expect(definition.set.responseSerialize).toBe(HomeKvServiceService.set.responseSerialize);
});

test("an answer is not changed by the ones encoded after it, large or small, nor by an encoding that threw", () => {
  const first = encodeOnce(GetResponse, GetResponse.fromPartial({ records: [record("a", 100_000, 1)] }));
  const copy = Buffer.from(first);
  encodeOnce(GetResponse, GetResponse.fromPartial({ records: [record("b", 100_000, 2)] }));
  encodeOnce(GetResponse, GetResponse.fromPartial({ records: [record("c", 5 * 1024 * 1024, 3)] }));
  // A revision past what an int64 takes throws midway through the message.
  const bad = GetResponse.fromPartial({ records: [record("d", 10, 4)], revision: 2 ** 64 });
  expect(() => encodeOnce(GetResponse, bad)).toThrow();
  expect(first.equals(copy)).toBe(true);
  const after = GetResponse.fromPartial({ records: [record("e", 10, 5)], revision: 1 });
  expect(encodeOnce(GetResponse, after).equals(Buffer.from(GetResponse.encode(after).finish()))).toBe(true);
});
