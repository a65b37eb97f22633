/**
 * The two kinds of error (DESIGN.md, convention 3).
 *
 * Expected conditions are `HomeKvError`s with a code; src/server maps the code to a gRPC status and
 * the CLI prints the message as one line. A broken invariant is an `assert`, which throws at once and
 * is never caught to be shown as a user error.
 */

/** Every expected condition, by code: part of the public contract (and peers send them by name): add new ones, never rename. */
export const ERROR_CODES = [
  "E_INVALID", // malformed request: empty key, duplicate key, missing argument
  "E_LIMIT", // request over a configured limit (key size, value size, keys per request)
  "E_TOO_LARGE", // request message over the byte limit
  "E_COMPACTED", // revision no longer readable
  "E_FUTURE_REVISION", // revision not yet committed
  "E_UNAVAILABLE", // store closed or shutting down
  "E_LISTEN", // server side: the address cannot be bound
  "E_CORRUPT", // a data file is damaged: the store refuses to start rather than lose data
  "E_LOCKED", // the data directory is held by another process
  "E_NOT_PERSISTENT", // asked for a disk operation of a server that keeps no data on disk
  "E_DISK", // a disk write or sync failed (ENOSPC, EIO): the write was not applied
  "E_CONFIG", // a setting, config file, auth file or certificate is wrong: the server does not start
  "E_UNREACHABLE", // client side: server could not be reached
  "E_NOT_LEADER", // cluster: this member cannot order a write now (not the leader, or handing leadership over)
  "E_PROPOSAL_DROPPED", // cluster: a write proposed here was replaced by another leader's entry: it was not applied
  "E_MEMBERSHIP", // cluster: a membership change that cannot be made (unknown member, quorum at risk, a change under way)
  "E_CONFLICT", // cluster: a transaction lost to another writing the same key; nothing of it was applied, a retry may succeed
  "E_UNIMPLEMENTED", // a call this server does not offer in its mode (a partitioned cluster's database, for now: its synchronous views, snapshots held open)
  "E_PRECONDITION", // the call cannot be served in the state things are in: a backup to a directory that exists, or while another runs
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * The gRPC trailer in which a server names the code of the HomeKvError it answers with: a client
 * tells from it, not from the message text, what happened (E_NOT_LEADER: the write was not applied).
 */
export const ERROR_CODE_TRAILER = "homekv-error-code";

export class HomeKvError extends Error {
  override readonly name = "HomeKvError";
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Whether `error` is the expected condition `code`. */
const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** An error code read from another member or a peer's answer; one this version does not know reads as E_UNAVAILABLE. */
export function knownErrorCode(code: string): ErrorCode {
  return KNOWN_CODES.has(code) ? (code as ErrorCode) : "E_UNAVAILABLE";
}

/** An error's message for a log line or another error's, whatever was thrown. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isHomeKvError(error: unknown, code: ErrorCode): error is HomeKvError {
  return error instanceof HomeKvError && error.code === code;
}

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/**
 * `message` may be a function when it is built from values: asserts sit on hot paths, and a template
 * literal would be formatted on every call, not only on the failing one.
 */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(`assertion failed: ${typeof message === "string" ? message : message()}`);
}

/**
 * What a log that is closing refuses a write with before taking it (E_UNAVAILABLE): nothing was
 * applied, so a client may send it elsewhere. Writes already taken end otherwise ("outcome unknown").
 */
export const STORE_CLOSED_MESSAGE = "the store is shutting down";
