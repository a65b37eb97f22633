/**
 * etcd v3's KV requests, encoded in protobuf for the comparison benchmark (only the fields it
 * needs, numbers from etcd's api/etcdserverpb/rpc.proto): RangeRequest{key=1}, PutRequest{key=1,
 * value=2}, DeleteRangeRequest{key=1}, TxnRequest{success=2: RequestOp{request_range=1,
 * request_put=2, request_delete_range=3}}. Several keys in one request become one Txn, which is how
 * an etcd user writes a batch atomically.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { H2Pool } from "../../src/bench/h2-unary.ts";
import type { BenchProtocol } from "../../src/bench/workload.ts";

/** The fields of one request (Range, Put or DeleteRange), written into `writer`. */
type Request = (writer: BinaryWriter) => void;

/** RangeRequest{key}; a DeleteRangeRequest{key} is written the same way. */
function range(key: string): Request {
  return (writer) => writer.tag(1, WireType.LengthDelimited).string(key);
}
const deleteRange = range;

function put(key: string, value: Uint8Array): Request {
  return (writer) => writer.tag(1, WireType.LengthDelimited).string(key).tag(2, WireType.LengthDelimited).bytes(value);
}

function encode(request: Request): Uint8Array {
  const writer = new BinaryWriter();
  request(writer);
  return writer.finish();
}

/** A TxnRequest whose `success` holds one RequestOp per request, each in RequestOp field `op`. */
function txn(op: 1 | 2 | 3, requests: Request[]): Uint8Array {
  const writer = new BinaryWriter();
  for (const request of requests) {
    writer.tag(2, WireType.LengthDelimited).fork().tag(op, WireType.LengthDelimited).fork();
    request(writer);
    writer.join().join();
  }
  return writer.finish();
}

export const etcdProtocol: BenchProtocol = {
  get: (keys) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/Range", message: encode(range(keys[0]!)) }
      : { path: "/etcdserverpb.KV/Txn", message: txn(1, keys.map(range)) },
  set: (keys, value) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/Put", message: encode(put(keys[0]!, value)) }
      : {
          path: "/etcdserverpb.KV/Txn",
          message: txn(
            2,
            keys.map((key) => put(key, value)),
          ),
        },
  del: (keys) =>
    keys.length === 1
      ? { path: "/etcdserverpb.KV/DeleteRange", message: encode(deleteRange(keys[0]!)) }
      : { path: "/etcdserverpb.KV/Txn", message: txn(3, keys.map(deleteRange)) },
};

/**
 * Who a member is and whom it follows, from Maintenance/Status: StatusResponse{header=1:
 * ResponseHeader{member_id=2}, leader=4}, both member ids (uint64, given here in decimal).
 */
export async function etcdStatus(pool: H2Pool): Promise<{ memberId: string; leader: string }> {
  const answer = await pool.call("/etcdserverpb.Maintenance/Status", new Uint8Array());
  if (answer.status !== 0) throw new Error(`etcd Status: ${answer.message}`);
  let memberId = "";
  let leader = "";
  const reader = new BinaryReader(answer.body);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const header = new BinaryReader(reader.bytes());
      while (header.pos < header.len) {
        const [headerField, headerWireType] = header.tag();
        if (headerField === 2 && headerWireType === WireType.Varint) memberId = String(header.uint64());
        else header.skip(headerWireType);
      }
    } else if (field === 4 && wireType === WireType.Varint) leader = String(reader.uint64());
    else reader.skip(wireType);
  }
  return { memberId, leader };
}
