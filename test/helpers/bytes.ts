/** Text and bytes, for tests that write text values and read them back. */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of `text`. */
export const bytes = (text: string): Uint8Array => encoder.encode(text);

/** A value as text; undefined for a missing value (undefined, or null where a deletion is null). */
export const text = (value: Uint8Array | null | undefined): string | undefined =>
  value == null ? undefined : decoder.decode(value);
