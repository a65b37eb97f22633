import { expect } from "bun:test";
import type { CliResult } from "./processes.ts";

/** An expected error: exactly one line on stderr, nothing on stdout, no stack trace. */
export function expectOneLineError(result: CliResult, exitCode: number, text: string) {
  expect(result.exitCode).toBe(exitCode);
  expect(result.stdout).toBe("");
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(result.stderr).toContain(text);
  expect(result.stderr).not.toContain("    at ");
}
