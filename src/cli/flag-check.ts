import type { ArgDef, ArgsDef } from "citty";
import { UsageError } from "./usage-error.ts";

/**
 * What citty lets through and a command must not take (it parses leniently, and each mistake
 * below did something else than asked, silently):
 * - a flag the command does not have: `homekv del k --revision 5` deleted the keys `k` and `5`;
 * - a flag that takes a value given none (`--rev` last, `--rev=`, or a flag next): citty gives "",
 *   which reads as the default, so `homekv del k -p` deleted `k` on the default port;
 * - `--no-X` of a flag that takes a value: `--no-if-revision` became "only if absent".
 *
 * `tokens` are the arguments after the command's name, up to `--` (after it everything is a
 * positional, a key that begins with "-" included). A token that follows a flag taking a value is
 * that value, whatever it looks like: `--ttl -1` is refused by `--ttl`'s own check.
 */
export function checkFlags(command: string, tokens: readonly string[], args: ArgsDef): void {
  const flags = flagsOf(args);
  const unknown = (flag: string) =>
    new UsageError(`homekv ${command} has no flag ${flag} (homekv ${command} --help lists them)`);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!isFlag(token)) continue;
    const long = token.startsWith("--");
    const [name, inline] = long ? splitInline(token.slice(2)) : [token.slice(1), undefined];
    const def = flags.get(name);
    if (def === undefined && long && name.startsWith("no-")) {
      const negated = flags.get(name.slice(3));
      if (negated?.type === "boolean") continue;
      if (negated !== undefined) throw new UsageError(`--${name.slice(3)} takes a value: ${token} says nothing`);
    }
    // A short flag may carry its value attached: -p20001.
    if (def === undefined && !long && takesValue(flags.get(name[0]!))) continue;
    if (def === undefined) throw unknown(long ? `--${name}` : token);
    if (!takesValue(def)) continue;
    const next = tokens[i + 1];
    const value = inline ?? (next === undefined || isFlag(next) ? undefined : next);
    if (value === undefined || value === "") throw new UsageError(`${long ? `--${name}` : token} needs a value`);
    if (inline === undefined) i++;
  }
}

/** The command's flags by every name they answer to: kebab-case, camelCase, aliases. */
function flagsOf(args: ArgsDef): Map<string, ArgDef> {
  const flags = new Map<string, ArgDef>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    flags.set(name, def);
    flags.set(
      name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase()),
      def,
    );
    const aliases = "alias" in def ? def.alias : undefined;
    for (const alias of aliases === undefined ? [] : [aliases].flat()) flags.set(alias, def);
  }
  return flags;
}

function takesValue(def: ArgDef | undefined): boolean {
  return def !== undefined && def.type !== "boolean" && def.type !== "positional";
}

/** A flag, not a value: "-" alone is a value, and so is a negative number. */
function isFlag(token: string): boolean {
  return token.startsWith("-") && token !== "-" && !/^-\d/.test(token);
}

function splitInline(body: string): [string, string | undefined] {
  const at = body.indexOf("=");
  return at < 0 ? [body, undefined] : [body.slice(0, at), body.slice(at + 1)];
}
