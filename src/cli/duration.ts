import { UsageError } from "./usage-error.ts";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * `500ms`, `10s`, `5m`, `1h` (a bare number is seconds) → whole milliseconds, at least 1 (a
 * shorter one would round to 0, which every user of a duration takes as "none").
 */
export function parseDuration(flag: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] ?? "s"]! : Number.NaN;
  if (!(ms > 0) || !Number.isFinite(ms))
    throw new UsageError(`${flag} must be a duration like 500ms, 10s or 5m, not ${JSON.stringify(raw)}`);
  if (Math.round(ms) < 1) throw new UsageError(`${flag} must be at least 1ms, not ${JSON.stringify(raw)}`);
  return Math.round(ms);
}
