import { type ServiceError, status as Status } from "@grpc/grpc-js";
import { type ErrorCode, STORE_CLOSED_MESSAGE } from "../errors.ts";
import { fromServiceError, type HomeKvRpcError } from "./rpc-error.ts";

/**
 * What one failed attempt of a call says about it, which decides whether another endpoint may be
 * tried:
 * - `not-sent`: the call never left this client (no connection): any call may go elsewhere.
 * - `not-applied`: the server refused a write before taking it (E_NOT_LEADER): likewise.
 * - `lost`: it was sent and no answer came (the connection dropped, the deadline passed): a read may
 *   go elsewhere; a write may have been applied or not.
 * - `unavailable`: the server answered UNAVAILABLE: a read may go elsewhere; for a write, the
 *   answer is the server's word on what happened to it.
 * - `answer`: any other status: the server's answer, final.
 */
export interface AttemptFailure {
  kind: "not-sent" | "not-applied" | "lost" | "unavailable" | "answer";
  /** What happened, for a message: "connection refused (…)", "UNAVAILABLE: the store is shutting down". */
  reason: string;
  /** The status as grpc-js or the server gave it. */
  error: HomeKvRpcError;
}

/** Codes a server refuses a write with before it took it: nothing was applied. */
const NOT_APPLIED: ReadonlySet<ErrorCode> = new Set(["E_NOT_LEADER", "E_PROPOSAL_DROPPED"]);

export function classify(serviceError: ServiceError): AttemptFailure {
  const error = fromServiceError(serviceError);
  if (neverSent(serviceError)) return { kind: "not-sent", reason: unreachableReason(serviceError), error };
  const failure = (kind: AttemptFailure["kind"], reason = error.message) => ({ kind, reason, error });
  const code = error.errorCode;
  if (
    code !== undefined &&
    (NOT_APPLIED.has(code) || (code === "E_UNAVAILABLE" && error.details === STORE_CLOSED_MESSAGE))
  )
    return failure("not-applied");
  if (error.code === Status.DEADLINE_EXCEEDED) return failure("lost", "no answer before the deadline");
  // An UNAVAILABLE without the server's trailer comes from the connection, not from a handler.
  if (error.code === Status.UNAVAILABLE)
    return code === undefined ? failure("lost", `the connection failed: ${error.details}`) : failure("unavailable");
  return failure("answer");
}

/**
 * Whether grpc-js failed the call before giving it to a connection: "No connection established"
 * when the channel has failed, or a deadline that passed while the call still waited for one.
 */
function neverSent(error: ServiceError): boolean {
  if (error.code === Status.UNAVAILABLE) return error.details.includes("No connection established");
  if (error.code === Status.DEADLINE_EXCEEDED)
    return /Waiting for LB pick|waiting for name resolution|waiting for metadata filters/.test(error.details);
  return false;
}

/** What went wrong while connecting, from grpc-js's "No connection established. Last error: …" text. */
const CONNECT_FAILURES: readonly [RegExp, string][] = [
  [/ECONNREFUSED/, "connection refused (is homekv serve running there?)"],
  [
    /WRONG_VERSION_NUMBER|packet length too long/i,
    "TLS handshake failed: the server does not speak TLS (connect without --tls / --tls-ca)",
  ],
  [/certificate has expired|CERT_HAS_EXPIRED/i, "the server's TLS certificate has expired"],
  [/certificate is not yet valid/i, "the server's TLS certificate is not valid yet"],
  [
    /unable to verify|self[- ]signed|local issuer|UNABLE_TO_GET_ISSUER/i,
    "the server's TLS certificate is not signed by a CA this client trusts (--tls-ca)",
  ],
  [
    /ALTNAME_INVALID|does not match certificate/i,
    "the server's TLS certificate is not valid for this host name (--tls-server-name checks another)",
  ],
  [/CERTIFICATE_REQUIRED/i, "the server requires a client certificate (--tls-cert and --tls-key)"],
  [
    /Failed to connect/,
    "the server closed the connection during setup (does it expect TLS, or a client certificate it trusts?)",
  ],
];

function unreachableReason(error: ServiceError): string {
  if (error.code === Status.DEADLINE_EXCEEDED) return "no answer before the deadline";
  const known = CONNECT_FAILURES.find(([pattern]) => pattern.test(error.details));
  if (known) return known[1];
  const last = /Last error: (?:Error(?: \[\w+\])?: )?(.*?)(?: \(\d{4}-[^)]*\))?\. Resolution note/.exec(
    error.details,
  )?.[1];
  return last ?? /(E[A-Z]{3,})\b/.exec(error.details)?.[1] ?? error.details;
}
