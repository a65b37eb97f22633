import { parse as parseToml, TomlError } from "smol-toml";
import { parseDuration } from "./duration.ts";
import { parseSize } from "./size.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

/**
 * Settings that come from flags, HOMEKV_* environment variables and a TOML file, in that order of
 * precedence, over their defaults. One table describes each setting once; its flag is `--name`, its
 * environment variable HOMEKV_NAME (dashes as underscores), its file key `name`.
 */
export type SettingKind =
  | { readonly type: "string" }
  | { readonly type: "boolean" }
  | { readonly type: "integer"; readonly min: number; readonly max: number }
  /** Bytes, written `65536`, `64KiB` or `256MiB`. */
  | { readonly type: "size"; readonly min: number; readonly max: number }
  /** Written `500ms`, `10s`, `5m`; held in milliseconds. */
  | { readonly type: "duration" }
  | { readonly type: "choice"; readonly choices: readonly string[] };

export interface SettingSpec {
  readonly kind: SettingKind;
  readonly description: string;
  /** Undefined: the setting is off unless given. */
  readonly default?: string | number | boolean;
  /** Shown masked by --print-config. */
  readonly secret?: boolean;
  readonly alias?: string;
}

type ValueOf<K extends SettingKind> = K extends { type: "integer" | "size" | "duration" }
  ? number
  : K extends { type: "boolean" }
    ? boolean
    : string;

/** The resolved values of a table of settings, typed by kind; undefined where nothing set it. */
export type SettingValues<T extends Record<string, SettingSpec>> = {
  [N in keyof T]: ValueOf<T[N]["kind"]> | undefined;
};

export interface ResolvedSettings<T extends Record<string, SettingSpec>> {
  values: SettingValues<T>;
  /** Where each value came from: `--port`, `HOMEKV_PORT`, `homekv.toml:3`, `default`, or `unset`. */
  sources: { [N in keyof T]: string };
}

export interface SettingInputs {
  /** Flag values as citty gives them: strings, booleans for boolean settings. */
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  /** A config file: its name (for messages) and text. */
  file?: { path: string; text: string };
}

export function envName(name: string): string {
  return `HOMEKV_${name.toUpperCase().replaceAll("-", "_")}`;
}

export function resolveSettings<T extends Record<string, SettingSpec>>(
  table: T,
  inputs: SettingInputs,
): ResolvedSettings<T> {
  const fileValues = inputs.file
    ? readConfigFile(table, inputs.file.path, inputs.file.text)
    : new Map<string, { value: unknown; where: string }>();
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const [name, spec] of Object.entries(table)) {
    const flag = inputs.flags[name];
    const env = inputs.env[envName(name)];
    const fromFile = fileValues.get(name);
    if (flag !== undefined) {
      [values[name], sources[name]] = [fromText(spec.kind, `--${name}`, flag), `--${name}`];
    } else if (env !== undefined && env !== "") {
      [values[name], sources[name]] = [fromText(spec.kind, envName(name), env), envName(name)];
    } else if (fromFile) {
      [values[name], sources[name]] = [
        fromToml(spec.kind, `${fromFile.where}: ${name}`, fromFile.value),
        fromFile.where,
      ];
    } else {
      [values[name], sources[name]] = [spec.default, spec.default === undefined ? "unset" : "default"];
    }
  }
  return { values: values as SettingValues<T>, sources: sources as ResolvedSettings<T>["sources"] };
}

/** A value given as text (a flag, an environment variable). */
function fromText(kind: SettingKind, label: string, raw: unknown): unknown {
  const text = String(raw);
  if (text === "") throw new UsageError(`${label} needs a value`);
  switch (kind.type) {
    case "string":
      return text;
    case "boolean":
      if (raw === true || /^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      throw new UsageError(`${label} must be true or false, not ${JSON.stringify(text)}`);
    case "integer":
      return parseIntegerFlag(label, text, 0, kind.min, kind.max);
    case "size":
      return parseSize(label, text, kind.min, kind.max);
    case "duration":
      return parseDuration(label, text);
    case "choice":
      if (!kind.choices.includes(text))
        throw new UsageError(`${label} must be one of ${kind.choices.join(", ")}, not ${JSON.stringify(text)}`);
      return text;
  }
}

/**
 * A value from the TOML file: its TOML type must be one the setting takes, then the text rules
 * apply. A size is an integer (bytes) or a string with a unit.
 */
function fromToml(kind: SettingKind, label: string, value: unknown): unknown {
  const accepted: readonly string[] =
    kind.type === "boolean"
      ? ["boolean"]
      : kind.type === "integer"
        ? ["integer"]
        : kind.type === "size"
          ? ["integer", "string"]
          : ["string"];
  const actual =
    typeof value === "boolean"
      ? "boolean"
      : Number.isInteger(value) || typeof value === "bigint"
        ? "integer"
        : typeof value === "string"
          ? "string"
          : tomlTypeName(value);
  const article = (type: string) => `${type === "integer" ? "an" : "a"} ${type}`;
  if (!accepted.includes(actual))
    throw new UsageError(`${label} must be ${accepted.map(article).join(" or ")}, not ${article(actual)}`);
  return fromText(kind, label, value);
}

function tomlTypeName(value: unknown): string {
  if (typeof value === "number") return "float";
  if (Array.isArray(value)) return "array";
  if (value instanceof Date) return "date";
  return typeof value === "object" && value !== null ? "table" : typeof value;
}

/** The file's settings with the line each is on; unknown keys and syntax errors name their line. */
function readConfigFile(
  table: Record<string, SettingSpec>,
  path: string,
  text: string,
): Map<string, { value: unknown; where: string }> {
  let parsed: Record<string, unknown>;
  try {
    parsed = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) throw new UsageError(`${path}:${error.line}: ${error.message.split("\n")[0]}`);
    throw error;
  }
  const lines = text.split("\n");
  const entries = new Map<string, { value: unknown; where: string }>();
  for (const [key, value] of Object.entries(parsed)) {
    const where = `${path}:${lineOf(lines, key) ?? "?"}`;
    if (!Object.hasOwn(table, key))
      throw new UsageError(`${where}: unknown setting ${JSON.stringify(key)} (homekv serve --help lists them)`);
    entries.set(key, { value, where });
  }
  return entries;
}

/** The 1-based line where `key` (bare, or quoted) is assigned or opens a table. */
function lineOf(lines: readonly string[], key: string): number | undefined {
  const name = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`^\\s*(?:(?:${name}|"${name}"|'${name}')\\s*=|\\[+\\s*(?:${name}|"${name}")\\s*[\\].])`);
  const index = lines.findIndex((line) => pattern.test(line));
  return index === -1 ? undefined : index + 1;
}

/** The settings as a TOML file would hold them, each with where it came from; secrets masked. */
export function formatSettings<T extends Record<string, SettingSpec>>(table: T, resolved: ResolvedSettings<T>): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const value = resolved.values[name];
    const source = resolved.sources[name];
    if (value === undefined) return `# ${name} (not set)`;
    const shown = spec.secret
      ? JSON.stringify("********")
      : typeof value === "string"
        ? JSON.stringify(value)
        : spec.kind.type === "duration"
          ? JSON.stringify(`${value}ms`)
          : String(value);
    return `${name} = ${shown}  # ${source}`;
  });
  return ["# homekv serve settings: flags > HOMEKV_* environment > config file > defaults", ...rows].join("\n");
}
