import { HomeKvError } from "../../errors.ts";
import { errorCode } from "./file-system.ts";

/** A failed file operation as the client sees it: E_DISK, saying what was being done and why it failed. */
export function diskError(what: string, cause: unknown): HomeKvError {
  const code = errorCode(cause);
  const detail =
    code === "ENOSPC"
      ? "the disk is full (ENOSPC)"
      : code
        ? `${code}: ${cause instanceof Error ? cause.message : cause}`
        : String(cause);
  return new HomeKvError("E_DISK", `${what}: ${detail}`);
}
