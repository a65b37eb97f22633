import { DelRequest, GetRequest, SetRequest } from "../gen/homekv_service.ts";
import { mulberry32 } from "../random.ts";

export type BenchOp = "get" | "set" | "del" | "mixed";
export const BENCH_OPS: readonly BenchOp[] = ["get", "set", "del", "mixed"];

export interface WorkloadOptions {
  op: BenchOp;
  /** Keys are drawn uniformly from this many. */
  keys: number;
  valueSize: number;
  /** Keys per request. */
  batch: number;
  /** For `mixed`: the share of requests that are gets (0.9 = 90% get, 10% set). */
  readRatio: number;
  seed: number;
}

/** One request ready to send, with the RPC it goes to and how many keys it carries. */
export interface BenchRequest {
  kind: "get" | "set" | "del";
  path: string;
  message: Uint8Array;
  keys: number;
}

/** How a target server spells the three requests; HomeKV's own here, etcd's in the comparison script. */
export interface BenchProtocol {
  get(keys: string[]): { path: string; message: Uint8Array };
  set(keys: string[], value: Uint8Array): { path: string; message: Uint8Array };
  del(keys: string[]): { path: string; message: Uint8Array };
}

const SERVICE = "/homekv_service.HomeKvService";

export const homekvProtocol: BenchProtocol = {
  get: (keys) => ({ path: `${SERVICE}/Get`, message: GetRequest.encode(GetRequest.fromPartial({ keys })).finish() }),
  set: (keys, value) => ({
    path: `${SERVICE}/Set`,
    message: SetRequest.encode(SetRequest.fromPartial({ records: keys.map((key) => ({ key, value })) })).finish(),
  }),
  del: (keys) => ({ path: `${SERVICE}/Del`, message: DelRequest.encode(DelRequest.fromPartial({ keys })).finish() }),
};

/** 16-byte keys: `bench/` and ten digits. */
export function benchKey(index: number): string {
  return `bench/${String(index).padStart(10, "0")}`;
}

/** Draws requests: uniform keys from a seeded PRNG (mulberry32), so a run can be repeated. */
export function createWorkload(options: WorkloadOptions, protocol: BenchProtocol = homekvProtocol): () => BenchRequest {
  const random = mulberry32(options.seed);
  const value = new Uint8Array(options.valueSize).map((_, i) => 97 + (i % 26));
  const pickKeys = (): string[] => {
    // Distinct keys within one request (a Set may not name a key twice).
    const picked = new Set<number>();
    while (picked.size < Math.min(options.batch, options.keys)) picked.add(Math.floor(random() * options.keys));
    return [...picked].map(benchKey);
  };
  return () => {
    const kind = options.op === "mixed" ? (random() < options.readRatio ? "get" : "set") : options.op;
    const keys = pickKeys();
    const { path, message } = kind === "set" ? protocol.set(keys, value) : protocol[kind](keys);
    return { kind, path, message, keys: keys.length };
  };
}

/** Requests that write every key of the keyspace once, `perRequest` keys at a time. */
export function* prefillRequests(
  options: Pick<WorkloadOptions, "keys" | "valueSize">,
  perRequest: number,
  protocol: BenchProtocol = homekvProtocol,
) {
  const value = new Uint8Array(options.valueSize).fill(120);
  for (let start = 0; start < options.keys; start += perRequest) {
    const keys = Array.from({ length: Math.min(perRequest, options.keys - start) }, (_, i) => benchKey(start + i));
    yield protocol.set(keys, value);
  }
}
