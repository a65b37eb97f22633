import {
  type CallOptions,
  type ClientUnaryCall,
  type Metadata,
  type ServiceError,
  status as Status,
} from "@grpc/grpc-js";
import { assert, HomeKvError } from "../errors.ts";
import type { HomeKvServiceClient } from "../gen/homekv_service.ts";
import { type AttemptFailure, classify } from "./attempt-failure.ts";
import { type Endpoint, settleConnection } from "./endpoint.ts";
import { HomeKvRpcError, OUTCOME_UNKNOWN } from "./rpc-error.ts";

/** Starts one unary call on a stub (a generated method with its arguments bound). */
export type StartCall<T> = (
  stub: HomeKvServiceClient,
  callback: (error: ServiceError | null, response: T) => void,
  metadata: Metadata,
  options: Partial<CallOptions>,
) => ClientUnaryCall;

/**
 * How freely a call may be repeated on another endpoint:
 * - `read`: whenever an endpoint does not answer;
 * - `write`: only when it is known not to have been applied (never sent, or the server said so);
 * - `write-once`: a write with a request id, which servers apply at most once: as a read.
 */
export type CallKind = "read" | "write" | "write-once";

export interface FailoverCall<T> {
  kind: CallKind;
  /** In the order to try, each at most once. */
  endpoints: readonly Endpoint[];
  /** The deadline of the whole call, every endpoint tried included. */
  timeoutMs: number;
  metadata: Metadata;
  start: StartCall<T>;
  /** A `write-once` call's request id, named when its outcome is unknown. */
  requestId?: string;
}

interface Failure extends AttemptFailure {
  address: string;
}

/**
 * Runs a call on the first endpoint that serves it, and resolves with the answer and that
 * endpoint. Each endpoint left gets an equal share of the time left to connect, and (unless the
 * call is a write that can be sent once only) to answer, so that one that hangs leaves time for
 * the next.
 */
export async function callWithFailover<T>(call: FailoverCall<T>): Promise<{ response: T; endpoint: Endpoint }> {
  const deadline = Date.now() + call.timeoutMs;
  const failures: Failure[] = [];
  for (const [index, endpoint] of call.endpoints.entries()) {
    const shareEnd = () => Date.now() + (deadline - Date.now()) / (call.endpoints.length - index);
    if (!(await settleConnection(endpoint, shareEnd()))) {
      const reason = "no connection before the deadline";
      const error = new HomeKvRpcError(Status.DEADLINE_EXCEEDED, reason);
      failures.push({ address: endpoint.address, kind: "not-sent", reason, error });
      continue;
    }
    const outcome = await attempt(endpoint, call, call.kind === "write" ? deadline : shareEnd());
    if ("response" in outcome) return { response: outcome.response, endpoint };
    const failure: Failure = { address: endpoint.address, ...classify(outcome.error) };
    failures.push(failure);
    if (!mayTryNext(call.kind, failure)) break;
  }
  throw finalError(call, failures);
}

function attempt<T>(
  endpoint: Endpoint,
  call: FailoverCall<T>,
  deadline: number,
): Promise<{ response: T } | { error: ServiceError }> {
  return new Promise((resolve) => {
    call.start(endpoint.stub, (error, response) => resolve(error ? { error } : { response }), call.metadata.clone(), {
      deadline,
    });
  });
}

function mayTryNext(kind: CallKind, failure: AttemptFailure): boolean {
  switch (failure.kind) {
    case "not-sent":
    case "not-applied":
      return true;
    case "lost":
    case "unavailable":
      return kind !== "write";
    case "answer":
      return false;
  }
}

function finalError(call: FailoverCall<unknown>, failures: readonly Failure[]): Error {
  const last = failures.at(-1);
  assert(last !== undefined, "a call tries at least one endpoint");
  const each = failures.map(({ address, reason }) => `${address}: ${reason}`).join("; ");
  if (call.kind !== "read" && failures.some((f) => f.kind === "lost")) {
    const what = call.requestId === undefined ? "the write" : `the write with request id ${call.requestId}`;
    const advice =
      call.requestId === undefined
        ? "it may or may not have been applied"
        : "retrying with the same request id applies it at most once";
    return new HomeKvRpcError(Status.UNAVAILABLE, `${OUTCOME_UNKNOWN} ${what} was sent, then: ${each}; ${advice}`);
  }
  if (failures.every((f) => f.kind === "not-sent")) {
    const where = failures.length === 1 ? each : `any endpoint: ${each}`;
    return new HomeKvError("E_UNREACHABLE", `cannot reach HomeKV at ${where}`);
  }
  // The server's last word stands as it was given when nothing else was tried after it.
  if (failures.length === 1 || !mayTryNext(call.kind, last)) return last.error;
  return new HomeKvRpcError(last.error.code, `no endpoint served the call: ${each}`, last.error.errorCode);
}
