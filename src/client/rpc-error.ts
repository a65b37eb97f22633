import { type ServiceError, status as Status } from "@grpc/grpc-js";
import { ERROR_CODE_TRAILER, ERROR_CODES, type ErrorCode } from "../errors.ts";

/** The details of an UNAVAILABLE status for a write that may or may not have been applied. */
export const OUTCOME_UNKNOWN = "outcome unknown:";

/** A call the server answered with an error status (or, for a write, one whose outcome is unknown). */
export class HomeKvRpcError extends Error {
  override readonly name = "HomeKvRpcError";
  constructor(
    readonly code: Status,
    readonly details: string,
    /** The server's HomeKvError code (its `homekv-error-code` trailer), when it answered with one. */
    readonly errorCode?: ErrorCode,
  ) {
    super(`${Status[code]}: ${details}`);
  }

  /** A write that was sent, and then no answer said whether it was applied. */
  get outcomeUnknown(): boolean {
    return this.code === Status.UNAVAILABLE && this.details.startsWith(OUTCOME_UNKNOWN);
  }
}

/** The status a server answered with, and its HomeKvError code. */
export function fromServiceError(error: ServiceError): HomeKvRpcError {
  return new HomeKvRpcError(error.code, error.details, errorCodeOf(error));
}

export function errorCodeOf(error: ServiceError): ErrorCode | undefined {
  const [code] = error.metadata?.get(ERROR_CODE_TRAILER) ?? [];
  // A code this client does not know yet (a newer server) is left out, not guessed at.
  return ERROR_CODES.find((known) => known === code);
}
