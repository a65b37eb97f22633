/** A mistake in how a command was called: shown as one line, exit code 2 (like most Unix tools). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** Parses a flag that must be an integer within [min, max]. */
export function parseIntegerFlag(
  flag: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  }
  return value;
}
