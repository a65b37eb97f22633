import { UsageError } from "./usage-error.ts";

const UNIT_BYTES: Readonly<Record<string, number>> = { "": 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/**
 * `65536`, `64KiB`, `256MiB`, `1.5GiB` → bytes, within [min, max]. Binary units only: "64MB"
 * would leave a reader unsure whether 10^6 or 2^20 was meant, so it is refused rather than guessed.
 */
export function parseSize(flag: string, raw: string, min: number, max: number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]ib)?$/i.exec(raw.trim());
  const bytes = match ? Number(match[1]) * UNIT_BYTES[(match[2] ?? "").toLowerCase()]! : Number.NaN;
  if (!Number.isInteger(bytes) || bytes < min || bytes > max)
    throw new UsageError(
      `${flag} must be a whole number of bytes from ${formatSize(min)} to ${formatSize(max)}, or a size like 64KiB or 256MiB, not ${JSON.stringify(raw)}`,
    );
  return bytes;
}

/** Bytes in the largest binary unit that writes them exactly (`67108864` → `64MiB`); help texts show defaults so. */
export function formatSize(bytes: number): string {
  for (const unit of ["TiB", "GiB", "MiB", "KiB"] as const) {
    const size = UNIT_BYTES[unit.toLowerCase()]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
