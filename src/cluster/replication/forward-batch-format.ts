import { HomeKvError, knownErrorCode } from "../../errors.ts";
import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";

/**
 * The writes a follower forwards to the leader in one peer call, and the leader's answer (frozen):
 *
 *   request   varint count · (bytes entry command) × count
 *   answer    varint first index · varint term · varint accepted
 *             · (when accepted < count) string error code · string message
 *
 * The accepted entries sit at consecutive indexes from the first; the rest were not appended and
 * carry the leader's refusal. This leader appends a batch all or none (a refusal of the whole batch
 * fails the call instead), so it always answers `accepted` = count; a follower still takes a partial
 * answer as the format allows.
 */
export interface ForwardAnswer {
  firstIndex: number;
  term: number;
  accepted: number;
  /** Why the entries past `accepted` were not appended. */
  refusal?: HomeKvError;
}

export function encodeForwardBatch(entries: readonly Uint8Array[]): Uint8Array {
  const out = new ByteWriter(entries.reduce((sum, entry) => sum + entry.byteLength + 4, 8)).varint(entries.length);
  for (const entry of entries) out.bytes(entry);
  return out.written();
}

export function decodeForwardBatch(body: Uint8Array): Uint8Array[] {
  const r = new ByteReader(body);
  const count = r.varint();
  // Each entry takes at least its length byte: a count past the bytes left is damage, not a reason to allocate.
  if (count > r.remaining) throw new FormatError(`a batch of ${count} forwarded writes in ${body.byteLength} bytes`);
  const entries: Uint8Array[] = [];
  for (let i = 0; i < count; i++) entries.push(r.bytesCopy());
  atEnd(r);
  return entries;
}

export function encodeForwardAnswer(answer: ForwardAnswer): Uint8Array {
  const out = new ByteWriter(32).varint(answer.firstIndex).varint(answer.term).varint(answer.accepted);
  if (answer.refusal) out.string(answer.refusal.code).string(answer.refusal.message);
  return out.written().slice();
}

export function decodeForwardAnswer(body: Uint8Array, count: number): ForwardAnswer {
  const r = new ByteReader(body);
  const firstIndex = r.varint();
  const term = r.varint();
  const accepted = r.varint();
  if (accepted > count) throw new FormatError(`${accepted} of ${count} forwarded writes accepted`);
  if (accepted === count) {
    atEnd(r);
    return { firstIndex, term, accepted };
  }
  const code = r.string();
  const message = r.string();
  atEnd(r);
  return { firstIndex, term, accepted, refusal: new HomeKvError(knownErrorCode(code), message) };
}

function atEnd(r: ByteReader): void {
  if (r.remaining !== 0) throw new FormatError(`${r.remaining} bytes after a forwarded batch`);
}
