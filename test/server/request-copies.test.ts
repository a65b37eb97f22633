import { expect, test } from "bun:test";
import { Compare_Op, Compare_Target, SetRequest, TxnRequest } from "../../src/gen/homekv_service.ts";
import { checkRecords, DEFAULT_LIMITS } from "../../src/server/limits.ts";
import { checkTxn } from "../../src/server/txn-request.ts";
import type { WriteOp } from "../../src/storage/ops.ts";

/**
 * The bytes of a request the store keeps (values, a compare's value) must be its own: the HTTP/2
 * transport decodes a request from a view of the chunk it was read in (a Buffer), and a value
 * sliced from a Buffer is a view again (Buffer.prototype.slice does not copy). A view would pin
 * the whole chunk for as long as the value lives, and change if the chunk were ever reused. The
 * store keeps what the command holds: a Raft leader applies the command it proposed, a single
 * server the one it logged.
 */

const record = (key: string, value: Uint8Array) => ({
  key,
  value,
  modRevision: 0,
  createRevision: 0,
  version: 0,
  ttlMs: 0,
});

/** `message` encoded inside a larger received chunk, as the transport hands it to the decoder. */
function inChunk(message: Uint8Array): { chunk: Buffer; request: Buffer } {
  const chunk = Buffer.alloc(64 * 1024);
  chunk.set(message, 100);
  return { chunk, request: chunk.subarray(100, 100 + message.byteLength) };
}

function expectOwnBytes(value: Uint8Array | null | undefined, chunk: Buffer, expected: number[]): void {
  expect(value).toBeInstanceOf(Uint8Array);
  chunk.fill(0xee);
  expect([...value!]).toEqual(expected);
  expect(value!.buffer.byteLength).toBe(value!.byteLength);
}

test("a Set's values are copies, not views of the chunk the request came in", () => {
  const { chunk, request } = inChunk(
    SetRequest.encode({ records: [record("k", new Uint8Array([1, 2, 3]))], requestId: "" }).finish(),
  );
  const [op] = checkRecords(SetRequest.decode(request).records, DEFAULT_LIMITS, 1_000);
  expectOwnBytes(op!.value, chunk, [1, 2, 3]);
});

test("a Txn's written values and compared values are copies too", () => {
  const { chunk, request } = inChunk(
    TxnRequest.encode({
      compares: [
        { key: "k", target: Compare_Target.VALUE, op: Compare_Op.EQUAL, value: new Uint8Array([4, 5]), number: 0 },
      ],
      success: [{ op: { $case: "put", put: record("k", new Uint8Array([6])) } }],
      failure: [],
      serializable: false,
      requestId: "",
    }).finish(),
  );
  const txn = checkTxn(TxnRequest.decode(request), DEFAULT_LIMITS, 1_000);
  const compared = txn.compares[0]!.value;
  const written = (txn.success[0] as WriteOp).value;
  expectOwnBytes(compared, chunk, [4, 5]);
  expectOwnBytes(written, chunk, [6]);
});
