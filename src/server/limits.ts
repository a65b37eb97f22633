import { HomeKvError } from "../errors.ts";
import type { WriteOp } from "../storage/ops.ts";
import { TTL_MS_MAX } from "../ttl.ts";

/** Per-request limits, set on `homekv serve`. Every check names the limit, its value and its flag. */
export interface Limits {
  keyBytesMax: number;
  valueBytesMax: number;
  keysPerRequestMax: number;
  requestBytesMax: number;
  /** Key and value bytes one response may carry: a small request must not make the server build a huge answer. */
  responseBytesMax: number;
  /** Bytes held for watchers, all of them together: half for messages in flight, half for queued events (WatchSendBudget). */
  watchBufferBytesMax: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  keyBytesMax: 4 * 1024,
  valueBytesMax: 1024 * 1024,
  keysPerRequestMax: 10_000,
  requestBytesMax: 16 * 1024 * 1024,
  // Sixty-four of the largest values (1 MiB): room for any sensible read, while a Get naming one
  // big key ten thousand times (a 40 KiB request) is refused instead of building gigabytes.
  responseBytesMax: 64 * 1024 * 1024,
  // Half in flight: like Redis's pubsub output limit (32 MiB hard per client), 64 MiB for all
  // streams lets any revision within the request limit go out, with previous values, while others
  // wait. Half queued: at ~200 bytes a queued event, 64 MiB is some 300,000 events — a thousand
  // watchers each 300 revisions behind — where 1,000 stuck watchers under their own limits reached
  // 600 MiB. Together small next to the memory of a server.
  watchBufferBytesMax: 128 * 1024 * 1024,
};

/** The `serve` flag of each limit, used in error messages so that an operator knows what to raise. */
export const LIMIT_FLAGS: Readonly<Record<keyof Limits, string>> = {
  keyBytesMax: "--max-key-bytes",
  valueBytesMax: "--max-value-bytes",
  keysPerRequestMax: "--max-keys-per-request",
  requestBytesMax: "--max-request-bytes",
  responseBytesMax: "--max-response-bytes",
  watchBufferBytesMax: "--max-watch-buffer-bytes",
};

/** `lead` says what is measured, with its verb: `key "a" is`, `the request has`. */
export function overLimit(limits: Limits, name: keyof Limits, lead: string, actual: number): HomeKvError {
  const unit = name === "keysPerRequestMax" ? "keys" : "bytes";
  return new HomeKvError(
    name === "requestBytesMax" || name === "responseBytesMax" ? "E_TOO_LARGE" : "E_LIMIT",
    `${lead} ${actual} ${unit}, over the limit of ${limits[name]} ${unit} (${LIMIT_FLAGS[name]})`,
  );
}

/** Checks the keys of a Get or Del; returns them with repeats removed (first occurrence kept). */
export function checkKeys(keys: readonly string[], limits: Limits): string[] {
  checkCount(keys.length, limits);
  // One key, the common case, has no repeat to remove (a Set per call showed in the CPU profile).
  const unique = keys.length < 2 ? [...keys] : [...new Set(keys)];
  for (const key of unique) checkKey(key, limits);
  return unique;
}

/**
 * Checks the records of a Set and turns them into write operations; a record with no value deletes,
 * a record with `ttlMs` expires that long after `nowMs`.
 */
export function checkRecords(
  records: readonly { key: string; value?: Uint8Array | undefined; ttlMs?: number }[],
  limits: Limits,
  nowMs: number,
): WriteOp[] {
  checkCount(records.length, limits);
  const seen = new Set<string>();
  return records.map((record) => {
    const op = checkWrite(record, limits, nowMs);
    if (seen.has(op.key))
      throw new HomeKvError("E_INVALID", `key ${quoteKey(op.key)} appears more than once in one Set`);
    seen.add(op.key);
    return op;
  });
}

/** Checks one record to write (Set, or a put in a Txn). */
export function checkWrite(
  record: { key: string; value?: Uint8Array | undefined; ttlMs?: number },
  limits: Limits,
  nowMs: number,
): WriteOp {
  const { key, value, ttlMs = 0 } = record;
  checkKey(key, limits);
  if (value !== undefined && value.byteLength > limits.valueBytesMax) {
    throw overLimit(limits, "valueBytesMax", `the value of key ${quoteKey(key)} is`, value.byteLength);
  }
  if (ttlMs > TTL_MS_MAX)
    throw new HomeKvError(
      "E_INVALID",
      `ttl_ms of key ${quoteKey(key)} is ${ttlMs}, over the maximum of ${TTL_MS_MAX} (one year)`,
    );
  if (ttlMs > 0 && value === undefined)
    throw new HomeKvError("E_INVALID", `ttl_ms is set on key ${quoteKey(key)}, which the record deletes`);
  const copy = value === undefined ? null : ownBytes(value);
  return ttlMs > 0 ? { key, value: copy, expiresAtMs: nowMs + ttlMs } : { key, value: copy };
}

/**
 * A copy of bytes decoded from a request, for the store to keep. The decoded bytes are a view into
 * the chunk the request was read in (a Buffer), and so would be their `slice()`: Buffer's does not
 * copy. Holding one small value must never pin a large chunk.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Refuses a response over --max-response-bytes before it is built (`bytes` as recordBytes counts them). */
export function checkResponseBytes(bytes: number, limits: Limits): void {
  if (bytes > limits.responseBytesMax) throw overLimit(limits, "responseBytesMax", "the response would hold", bytes);
}

export function checkCount(count: number, limits: Limits): void {
  if (count > limits.keysPerRequestMax) throw overLimit(limits, "keysPerRequestMax", "the request has", count);
}

export function checkKey(key: string, limits: Limits): void {
  if (key.length === 0) throw new HomeKvError("E_INVALID", "a key must not be empty");
  // UTF-8 never takes fewer bytes than UTF-16 code units, nor more than three per unit: skip the
  // byte count for keys that cannot be over the limit.
  if (key.length * 3 <= limits.keyBytesMax) return;
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > limits.keyBytesMax) throw overLimit(limits, "keyBytesMax", `key ${quoteKey(key)} is`, bytes);
}

/** A key as error messages show it: quoted, and cut short when long. */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
}

/** A request id costs memory for the last 100,000 writes that carried one: as long as a key, at most. */
export function checkRequestId(requestId: string, limits: Limits): string | undefined {
  if (requestId === "") return undefined;
  if (requestId.length * 3 > limits.keyBytesMax && Buffer.byteLength(requestId, "utf8") > limits.keyBytesMax)
    throw new HomeKvError(
      "E_LIMIT",
      `the request id is ${Buffer.byteLength(requestId, "utf8")} bytes; at most ${limits.keyBytesMax} (--max-key-bytes)`,
    );
  return requestId;
}
