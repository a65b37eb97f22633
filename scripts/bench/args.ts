/** The value after `name` among the script's arguments, or `fallback`. */
export function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  return args.includes(name) ? args[args.indexOf(name) + 1]! : fallback;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const half = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}
