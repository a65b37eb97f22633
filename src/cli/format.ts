/**
 * How the CLI shows data to a person: values quoted and escaped (never raw bytes to a terminal), a
 * missing value as `(nil)`, figures in aligned columns. `--json` output is built here too.
 */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A value as a person reads it: `"text"`, with control characters and invalid UTF-8 as escapes. */
export function showValue(value: Uint8Array | undefined): string {
  if (value === undefined) return "(nil)";
  const text = decodeUtf8(value);
  if (text !== undefined) return `"${escapeText(text)}"`;
  let out = "";
  for (const byte of value) out += byte >= 0x20 && byte < 0x7f ? escapeText(String.fromCharCode(byte)) : hex(byte);
  return `"${out}"`;
}

/** A value in `--json` output: `{"value": "text"}` when it is UTF-8, `{"value_base64": …}` otherwise. */
export function jsonValue(value: Uint8Array | undefined): { value: string | null } | { value_base64: string } {
  if (value === undefined) return { value: null };
  const text = decodeUtf8(value);
  return text !== undefined ? { value: text } : { value_base64: Buffer.from(value).toString("base64") };
}

/** Rows of two columns, the first padded to the widest. */
export function columns(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${left.padEnd(width)}  ${right}`).join("\n");
}

/** A table with a header row, each column padded to its widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function decodeUtf8(value: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(value);
  } catch {
    return undefined;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { "\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeText(text: string): string {
  // C0 controls, DEL and C1 controls would move the cursor or worse; everything else prints as is.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return text.replace(/[\\"\u0000-\u001f\u007f-\u009f]/g, (c) => ESCAPES[c] ?? hex(c.charCodeAt(0)));
}

function hex(byte: number): string {
  return `\\x${byte.toString(16).padStart(2, "0")}`;
}
