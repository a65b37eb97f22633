import { encodeLiterals, type Header } from "../../h2/hpack.ts";
import type { CallStatus } from "../call.ts";

/**
 * The header blocks of a gRPC answer (gRPC over HTTP/2: Response-Headers, then Trailers, or
 * Trailers-Only for a call that ends before any message), HPACK-encoded as literals that are never
 * indexed: the same headers are the same bytes, so the common ones are encoded once.
 */

const RESPONSE_HEADERS: readonly Header[] = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];

/** The block before the first message. */
export const RESPONSE_HEADERS_BLOCK = encodeLiterals(RESPONSE_HEADERS);
/** The trailers of a call that succeeded. */
export const OK_TRAILERS_BLOCK = encodeLiterals([["grpc-status", "0"]]);
/** An answer that is not gRPC's: a request whose content type is not application/grpc (as grpc-js answers). */
export const UNSUPPORTED_MEDIA_TYPE_BLOCK = encodeLiterals([[":status", "415"]]);

/** Trailers with `status`; `withHeaders`: Trailers-Only, the response headers first. */
export function trailersBlock(status: CallStatus, withHeaders: boolean): Buffer {
  if (status.code === 0 && !withHeaders && !status.trailers?.length && status.details === "") return OK_TRAILERS_BLOCK;
  const headers: Header[] = withHeaders ? [...RESPONSE_HEADERS] : [];
  headers.push(["grpc-status", String(status.code)]);
  if (status.details !== "") headers.push(["grpc-message", percentEncode(status.details)]);
  for (const [name, value] of status.trailers ?? []) headers.push([name, value]);
  return encodeLiterals(headers);
}

/**
 * grpc-message is percent-encoded UTF-8: every octet outside printable ASCII, and "%" itself, as
 * %XX (gRPC over HTTP/2, "Responses").
 */
export function percentEncode(text: string): string {
  let out = "";
  for (const octet of Buffer.from(text, "utf8")) {
    out += octet >= 0x20 && octet <= 0x7e && octet !== 0x25 ? String.fromCharCode(octet) : `%${hex(octet)}`;
  }
  return out;
}

const hex = (octet: number) => octet.toString(16).toUpperCase().padStart(2, "0");

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/**
 * A grpc-timeout value in milliseconds: at most 8 digits and a unit (H, M, S, m, u, n). Undefined
 * when malformed (the call is then refused, as grpc-js refuses it). Read digit by digit: it comes
 * with most calls, and a regular expression cost more than the rest of the headers' checks.
 */
export function parseGrpcTimeout(value: string): number | undefined {
  const digits = value.length - 1;
  if (digits < 1 || digits > 8) return undefined;
  const unitMs = TIMEOUT_UNIT_MS[value[digits]!];
  if (unitMs === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < digits; i++) {
    const digit = value.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    amount = amount * 10 + digit;
  }
  return amount * unitMs;
}
