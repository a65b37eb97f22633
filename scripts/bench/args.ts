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

/**
 * Every argument is a known flag followed by its value, or one of `switches`: a misspelt flag must
 * not run a default.
 */
export function checkArguments(
  args: readonly string[],
  valueFlags: readonly string[],
  switches: readonly string[] = [],
): void {
  for (let i = 0; i < args.length; i++) {
    if (switches.includes(args[i]!)) continue;
    if (!valueFlags.includes(args[i]!)) throw new Error(`unknown argument ${JSON.stringify(args[i])}`);
    if (++i >= args.length) throw new Error(`${args[i - 1]} needs a value`);
  }
}

export function integerFlag(name: string, text: string, least: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < least)
    throw new Error(`${name} must be an integer of at least ${least}, not ${JSON.stringify(text)}`);
  return value;
}

export function choiceFlag<T extends string>(name: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text))
    throw new Error(`${name} must be one of ${choices.join(", ")}, not ${JSON.stringify(text)}`);
  return text as T;
}
