import { HomeKvError } from "../../errors.ts";
import { FormatError } from "./bytes.ts";

/** The error that stops a start: names the file and the byte offset, never drops data silently. */
export function corruptionError(file: string, offset: number, reason: string): HomeKvError {
  return new HomeKvError("E_CORRUPT", `${file} is damaged at byte offset ${offset}: ${reason}`);
}

/** Runs a decoder on a payload whose checksum held; a payload that does not parse is damage too. */
export function decodeAt<T>(file: string, offset: number, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (error instanceof FormatError) throw corruptionError(file, offset, error.message);
    throw error;
  }
}
