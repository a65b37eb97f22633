import type { Database } from "../../../../src/storage/database.ts";
import type { Compare, KeyRecord, TxnOp } from "../../../../src/storage/ops.ts";
import type { KvInput, KvOutput, KvTxnOp } from "../../../linearizability/kv-model.ts";

/** The keys clients use: few, so that operations meet on them. */
export const KEYS = ["a", "b", "c", "d"];

/** One client request as the simulation issues it (what the gRPC handlers of src/server/service.ts call). */
export interface Request {
  input: KvInput;
  /** Reads of this member's applied state with no read barrier (Get, a read-only Txn). */
  serializable: boolean;
  /** Writes only: applied at most once, however often the client sends it. */
  requestId: string;
}

/** What the member answered, and at which revision. */
export interface Answer {
  output: KvOutput;
  revision: number;
  /** A write whose request id had been applied already (nothing was applied now). */
  duplicate: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const readValue = (record: KeyRecord) => (record.value === undefined ? null : decoder.decode(record.value));

/** Whether the request can change the store (it goes through the log). */
export function writes(input: KvInput): boolean {
  if (input.op === "get") return false;
  if (input.op !== "txn") return true;
  return [...input.success, ...input.failure].some((o) => o.type !== "get");
}

/**
 * Runs `request` on `db` as the server's handlers do: Get behind the read barrier unless
 * serializable, Set and Del as one batch, Txn through `db.txn`.
 */
export async function execute(db: Database, request: Request): Promise<Answer> {
  const { input, serializable } = request;
  const requestId = request.requestId || undefined;
  switch (input.op) {
    case "get": {
      if (!serializable) await db.readBarrier();
      const read = db.read(input.keys);
      return { output: { values: read.records.map(readValue) }, revision: read.revision, duplicate: false };
    }
    case "put": {
      const ops = input.records.map(({ key, value }) => ({ key, value: encoder.encode(value) }));
      const result = await db.write(ops, requestId);
      return { output: {}, revision: result.revision, duplicate: result.duplicate === true };
    }
    case "delete": {
      const result = await db.write(
        input.keys.map((key) => ({ key, value: null })),
        requestId,
      );
      return { output: { deleted: result.deleted }, revision: result.revision, duplicate: result.duplicate === true };
    }
    case "txn": {
      const compares: Compare[] = input.compares.map(({ key, value }) =>
        value === null
          ? { key, target: "exists", op: "==", number: 0 }
          : { key, target: "value", op: "==", value: encoder.encode(value) },
      );
      const result = await db.txn(
        { compares, success: input.success.map(txnOp), failure: input.failure.map(txnOp) },
        { serializable, requestId },
      );
      return {
        output: { succeeded: result.succeeded, values: result.reads.map(readValue) },
        revision: result.revision,
        duplicate: false,
      };
    }
  }
}

function txnOp(op: KvTxnOp): TxnOp {
  if (op.type === "get") return { get: op.key };
  return { key: op.key, value: op.type === "put" ? encoder.encode(op.value) : null };
}

/**
 * Random requests of one client: Get (linearizable or serializable), Set, Del, Txn (compare and
 * set, read-only, either order of reads and writes), half the writes with a request id. Values are
 * unique (client and sequence number), which keeps the linearizability search small.
 */
export class RequestSource {
  private seq = 0;
  private requests = 0;
  /** The last value this client wrote per key: what its compares expect. */
  private readonly last = new Map<string, string>();

  constructor(
    private readonly client: number,
    private readonly random: () => number,
  ) {}

  next(): Request {
    const r = this.random();
    const serializable = this.random() < 0.3;
    if (r < 0.25) return { input: { op: "get", keys: this.keys(2) }, serializable, requestId: "" };
    const requestId = this.random() < 0.5 ? `c${this.client}-${++this.requests}` : "";
    if (r < 0.5)
      return {
        input: { op: "put", records: this.keys(2).map((key) => ({ key, value: this.value(key) })) },
        serializable: false,
        requestId,
      };
    if (r < 0.6) return { input: { op: "delete", keys: this.keys(1) }, serializable: false, requestId };
    if (r < 0.7) {
      const keys = this.keys(2);
      const gets: KvTxnOp[] = keys.map((key) => ({ type: "get", key }));
      return {
        input: { op: "txn", compares: [this.compare()], success: gets, failure: gets },
        serializable,
        requestId: "",
      };
    }
    return { input: this.casTxn(requestId !== ""), serializable: false, requestId };
  }

  /** If the key holds what this client last wrote there: write it anew and read; else read it. */
  private casTxn(withRequestId: boolean): KvInput {
    const compare = this.compare();
    const other = this.keys(1)[0]!;
    const write: KvTxnOp =
      this.random() < 0.8
        ? { type: "put", key: compare.key, value: this.value(compare.key) }
        : { type: "delete", key: compare.key };
    const reads: KvTxnOp[] = [{ type: "get", key: compare.key }];
    if (other !== compare.key) reads.push({ type: "get", key: other });
    // A repeat of a request id answers its gets read at the first one's revision (database.ts
    // TxnOptions): after the branch's writes. Without one, reads may come first too.
    const success = withRequestId || this.random() < 0.5 ? [write, ...reads] : [...reads, write];
    return { op: "txn", compares: [compare], success, failure: reads };
  }

  private compare(): { key: string; value: string | null } {
    const key = this.keys(1)[0]!;
    return { key, value: this.random() < 0.8 ? (this.last.get(key) ?? null) : null };
  }

  /** 1 to `max` distinct keys. */
  private keys(max: number): string[] {
    const count = 1 + Math.floor(this.random() * max);
    const start = Math.floor(this.random() * KEYS.length);
    return Array.from({ length: count }, (_, i) => KEYS[(start + i) % KEYS.length]!);
  }

  private value(key: string): string {
    const value = `${this.client}.${++this.seq}`;
    this.last.set(key, value);
    return value;
  }
}
