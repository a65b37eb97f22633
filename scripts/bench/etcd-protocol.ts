/**
 * etcd v3's KV requests, hand-encoded in protobuf for the comparison benchmark (only the fields it
 * needs, numbers from etcd's api/etcdserverpb/rpc.proto): RangeRequest{key=1}, PutRequest{key=1,
 * value=2}, DeleteRangeRequest{key=1}, TxnRequest{success=2: RequestOp{request_range=1,
 * request_put=2, request_delete_range=3}}. Several keys in one request become one Txn, which is how
 * an etcd user writes a batch atomically.
 */
import type { BenchProtocol } from "../../src/bench/workload.ts";

const encoder = new TextEncoder();

function varint(value: number, out: number[]): void {
  while (value > 0x7f) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

/** A length-delimited field: tag, length, bytes. */
function field(number: number, bytes: Uint8Array): Uint8Array {
  const head: number[] = [];
  varint((number << 3) | 2, head);
  varint(bytes.byteLength, head);
  const out = new Uint8Array(head.length + bytes.byteLength);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

const range = (key: string) => field(1, encoder.encode(key));
const put = (key: string, value: Uint8Array) => concat([field(1, encoder.encode(key)), field(2, value)]);
const deleteRange = (key: string) => field(1, encoder.encode(key));
const txn = (ops: Uint8Array[]) => concat(ops.map((op) => field(2, op)));

export const etcdProtocol: BenchProtocol = {
  get: (keys) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/Range", message: range(keys[0]!) }
      : { path: "/etcdserverpb.KV/Txn", message: txn(keys.map((k) => field(1, range(k)))) },
  set: (keys, value) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/Put", message: put(keys[0]!, value) }
      : { path: "/etcdserverpb.KV/Txn", message: txn(keys.map((k) => field(2, put(k, value)))) },
  del: (keys) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/DeleteRange", message: deleteRange(keys[0]!) }
      : { path: "/etcdserverpb.KV/Txn", message: txn(keys.map((k) => field(3, deleteRange(k)))) },
};
