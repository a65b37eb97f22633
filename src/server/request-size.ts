import { BinaryReader } from "@bufbuild/protobuf/wire";
import { describeError, HomeKvError } from "../errors.ts";
import type { MethodDefinition } from "./call.ts";
import { type Limits, overLimit } from "./limits.ts";
import { fieldAt } from "./request-field.ts";

/**
 * The request size limit, checked by us rather than by the transport, so that an oversized request
 * is answered like every other over-limit request: a message naming the limit and its flag, counted
 * as a rejected command. The transport still stops anything past a hard cap (twice the limit, at
 * least 4 MiB more) before buffering it, so a hostile client cannot make the server hold an
 * unbounded message; past that cap the status (RESOURCE_EXHAUSTED) comes from the transport itself.
 *
 * A request that does not decode (truncated, a length past its end, an illegal wire type, a number
 * too large for a JavaScript number) is answered the same way: grpc-js alone would say INTERNAL
 * "Error deserializing request" and nothing more; here it is INVALID_ARGUMENT naming the RPC and
 * where and what is wrong, e.g. `the Get request is malformed at revision: Value is larger than
 * Number.MAX_SAFE_INTEGER`.
 */
const OVERSIZED = Symbol("oversized request");
const MALFORMED = Symbol("malformed request");

interface Oversized {
  [OVERSIZED]: number;
}

interface Malformed {
  [MALFORMED]: string;
}

const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A string field's bytes as text, whatever the decoder asked: invalid UTF-8 is refused. */
function strictUtf8(bytes: Uint8Array): string {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    throw new Error("a string field (a key, a request id) is not valid UTF-8");
  }
}

export function hardCapBytes(limits: Limits): number {
  return Math.min(2 ** 31 - 1, Math.max(2 * limits.requestBytesMax, limits.requestBytesMax + 4 * 1024 * 1024));
}

/**
 * The service with each request decoder replaced by one that skips decoding oversized messages and
 * turns a decoding failure into a marker, both for `checkDecodedRequest` to throw in the handler.
 */
export function withRequestSizeCheck<S extends Record<string, MethodDefinition>>(service: S, limits: Limits): S {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    const rpc = method.path.slice(method.path.lastIndexOf("/") + 1);
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        if (bytes.length > limits.requestBytesMax) return { [OVERSIZED]: bytes.length } satisfies Oversized;
        // The generated decoders take a reader as well as bytes: this one refuses a string field
        // that is not UTF-8, where protobuf-es would put U+FFFD in its place and a Set would write
        // another key than the one sent (proto3 requires UTF-8, as Go's and C++'s decoders check).
        const reader = new BinaryReader(bytes, strictUtf8);
        try {
          return method.requestDeserialize(reader as unknown as Buffer);
        } catch (error) {
          // The decoder's message is one line of its own ("premature EOF"); never its stack. Where
          // it stopped is named by the .proto's field names when it can be.
          const field = fieldAt(method.path, bytes, reader.pos);
          const at = field === undefined ? "" : ` at ${field}`;
          return { [MALFORMED]: `the ${rpc} request is malformed${at}: ${describeError(error)}` } satisfies Malformed;
        }
      },
    };
  }
  return wrapped as S;
}

/** Throws what the decoder marked: the over-limit error for an oversized request, E_INVALID for one that did not decode. */
export function checkDecodedRequest(request: unknown, limits: Limits): void {
  if (typeof request !== "object" || request === null) return;
  if (OVERSIZED in request)
    throw overLimit(limits, "requestBytesMax", "the request is", (request as Oversized)[OVERSIZED]);
  if (MALFORMED in request) throw new HomeKvError("E_INVALID", (request as Malformed)[MALFORMED]);
}
