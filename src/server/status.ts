import { status as Status } from "@grpc/grpc-js";
import { describeError, ERROR_CODE_TRAILER, type ErrorCode, HomeKvError } from "../errors.ts";
import { type CallStatus, StatusError } from "./call.ts";

const STATUS_BY_CODE: Readonly<Record<ErrorCode, Status>> = {
  E_INVALID: Status.INVALID_ARGUMENT,
  E_LIMIT: Status.INVALID_ARGUMENT,
  E_TOO_LARGE: Status.RESOURCE_EXHAUSTED,
  E_COMPACTED: Status.OUT_OF_RANGE,
  E_FUTURE_REVISION: Status.OUT_OF_RANGE,
  E_UNAVAILABLE: Status.UNAVAILABLE,
  E_LISTEN: Status.UNAVAILABLE,
  E_CORRUPT: Status.DATA_LOSS,
  E_LOCKED: Status.UNAVAILABLE,
  E_DISK: Status.UNAVAILABLE,
  E_NOT_PERSISTENT: Status.FAILED_PRECONDITION,
  E_UNREACHABLE: Status.UNAVAILABLE,
  E_CONFIG: Status.FAILED_PRECONDITION,
  E_NOT_LEADER: Status.UNAVAILABLE,
  E_PROPOSAL_DROPPED: Status.UNAVAILABLE,
  E_MEMBERSHIP: Status.FAILED_PRECONDITION,
  E_CONFLICT: Status.ABORTED,
  E_UNIMPLEMENTED: Status.UNIMPLEMENTED,
  E_PRECONDITION: Status.FAILED_PRECONDITION,
};

/**
 * The gRPC status for an error thrown by a handler. Expected errors keep their message and carry
 * their code in the ERROR_CODE_TRAILER; a StatusError is its status; anything else is a bug,
 * answered INTERNAL and reported through `onBug` (the server logs it).
 */
export function toStatus(error: unknown, onBug: (error: unknown) => void): CallStatus {
  if (error instanceof HomeKvError) {
    return { code: STATUS_BY_CODE[error.code], details: error.message, trailers: [[ERROR_CODE_TRAILER, error.code]] };
  }
  if (error instanceof StatusError) return error.status;
  onBug(error);
  return {
    code: Status.INTERNAL,
    details: `internal error: ${describeError(error)}`,
  };
}
