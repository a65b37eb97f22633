import { AssertionError, ERROR_CODES, type ErrorCode, HomeKvError } from "../../errors.ts";
import { errorCode } from "../../io/fs/file-system.ts";

/** An error as it crosses from one of the engine's Workers (worker-thread.ts): plain data. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
}

export function errorToWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const code = errorCode(error);
  return { name: error.name, message: error.message, stack: error.stack, ...(code === undefined ? {} : { code }) };
}

/**
 * The error as the engine would have seen it in process: a HomeKvError, an AssertionError, or an
 * Error with its system code; its stack says which Worker (`what`: compaction, flush) threw it.
 */
export function errorFromWire(wire: WireError, what: string): Error {
  const error =
    wire.name === "HomeKvError" && ERROR_CODES.includes(wire.code as ErrorCode)
      ? new HomeKvError(wire.code as ErrorCode, wire.message)
      : wire.name === "AssertionError"
        ? new AssertionError(wire.message)
        : Object.assign(new Error(wire.message), wire.code === undefined ? {} : { code: wire.code });
  if (wire.stack !== undefined) error.stack = `${wire.stack}\n    (in the ${what} Worker)`;
  return error;
}
