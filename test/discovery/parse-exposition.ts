/** A small parser of the Prometheus text format, strict enough to catch a malformed line. */
export interface ParsedSample {
  name: string;
  /** The family the sample belongs to (a histogram's _bucket/_sum/_count go to the histogram). */
  family: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: ParsedSample[];
  types: Map<string, string>;
  help: Map<string, string>;
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;

export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("exposition does not end with a line feed");
  const samples: ParsedSample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      const [, name, doc] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      if (!name) throw new Error(`bad HELP line: ${line}`);
      help.set(name, doc ?? "");
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
      if (!name) throw new Error(`bad TYPE line: ${line}`);
      types.set(name, type!);
      continue;
    }
    if (line.startsWith("#") || line === "") continue;
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`bad sample line: ${line}`);
    const [, name, rawLabels, rawValue] = match;
    const labels: Record<string, string> = {};
    if (rawLabels) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < rawLabels.length) {
        const label = LABEL.exec(rawLabels);
        if (!label) throw new Error(`bad labels: ${line}`);
        labels[label[1]!] = label[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
      }
    }
    const value = rawValue === "+Inf" ? Infinity : rawValue === "-Inf" ? -Infinity : Number(rawValue);
    if (Number.isNaN(value) && rawValue !== "NaN") throw new Error(`bad value: ${line}`);
    const family = types.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "");
    samples.push({ name: name!, family, labels, value });
  }
  return {
    samples,
    types,
    help,
    value(name, wanted = {}) {
      const found = samples.filter(
        (s) =>
          s.name === name &&
          Object.keys(wanted).length === Object.keys(s.labels).length &&
          Object.entries(wanted).every(([k, v]) => s.labels[k] === v),
      );
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(wanted)}`);
      return found[0]?.value;
    },
  };
}
