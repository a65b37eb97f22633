import type { ServiceDefinition } from "@grpc/grpc-js";
import { type Limits, overLimit } from "./limits.ts";

/**
 * The request size limit, checked by us rather than by grpc-js, so that an oversized request is
 * answered like every other over-limit request: a message naming the limit and its flag, counted
 * as a rejected command. grpc-js still stops anything past a hard cap (twice the limit, at least
 * 4 MiB more) before buffering it, so a hostile client cannot make the server hold an unbounded
 * message; past that cap the status comes from grpc-js itself.
 */
const OVERSIZED = Symbol("oversized request");

interface Oversized {
  [OVERSIZED]: number;
}

export function hardCapBytes(limits: Limits): number {
  return Math.min(2 ** 31 - 1, Math.max(2 * limits.requestBytesMax, limits.requestBytesMax + 4 * 1024 * 1024));
}

/** The service with each request decoder replaced by one that skips decoding oversized messages. */
export function withRequestSizeCheck<S extends ServiceDefinition>(service: S, limits: Limits): S {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(service)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) =>
        bytes.length > limits.requestBytesMax ? ({ [OVERSIZED]: bytes.length } satisfies Oversized) : method.requestDeserialize(bytes),
    };
  }
  return wrapped as S;
}

/** Throws the over-limit error when the request was marked oversized by the decoder. */
export function checkRequestSize(request: unknown, limits: Limits): void {
  if (typeof request === "object" && request !== null && OVERSIZED in request) {
    throw overLimit(limits, "requestBytesMax", "the request is", (request as Oversized)[OVERSIZED]);
  }
}
