import { Compare_Op, Compare_Target, type TxnRequest } from "../gen/homekv_service.ts";
import { UsageError } from "./usage-error.ts";

/**
 * The little language of `homekv txn`, read from stdin or a file. One statement per line; `#`
 * starts a comment; keys and values are bare words or JSON strings ("with spaces", "\n"):
 *
 *   if mod_revision(user/1) == 12        compares: value, mod_revision, create_revision, version
 *   if value(user/1) != "banned"         with ==, !=, <, >   (revisions and versions are numbers)
 *   if exists(lock)                      or: if missing(lock)
 *   then                                 the operations run when every compare holds
 *   put user/1 "new value"
 *   del session/9
 *   get user/1
 *   else                                 (optional) the operations run otherwise
 *   get user/1
 */
const TARGETS: Record<string, Compare_Target> = {
  value: Compare_Target.VALUE,
  mod_revision: Compare_Target.MOD_REVISION,
  create_revision: Compare_Target.CREATE_REVISION,
  version: Compare_Target.VERSION,
};
const OPS: Record<string, Compare_Op> = {
  "==": Compare_Op.EQUAL,
  "!=": Compare_Op.NOT_EQUAL,
  "<": Compare_Op.LESS,
  ">": Compare_Op.GREATER,
};
const encoder = new TextEncoder();

export function parseTxn(source: string): TxnRequest {
  const request: TxnRequest = { compares: [], success: [], failure: [], serializable: false, requestId: "" };
  let section: "if" | "then" | "else" = "if";
  const lines = source.split("\n");
  for (const [index, raw] of lines.entries()) {
    const fail = (why: string): never => {
      throw new UsageError(`txn line ${index + 1}: ${why}: ${raw.trim()}`);
    };
    const compare = /^\s*if\s+(.*?)\s*(#.*)?$/.exec(raw);
    if (compare) {
      if (section !== "if") fail(`compares come before "then"`);
      request.compares.push(parseCompare(compare[1]!, fail));
      continue;
    }
    const words = tokenize(raw, fail);
    if (words.length === 0) continue;
    const [head, ...rest] = words;
    if (head === "then" || head === "else") {
      if (rest.length > 0) fail(`nothing may follow "${head}" on its line`);
      if (head === "then" ? section !== "if" : section !== "then") fail(`"${head}" out of place`);
      section = head;
      continue;
    }
    if (section === "if") fail(`expected "if" or "then"`);
    const list = section === "then" ? request.success : request.failure;
    if (head === "get" && rest.length === 1) list.push({ op: { $case: "get", get: rest[0]! } });
    else if (head === "del" && rest.length === 1) list.push({ op: { $case: "delete", delete: rest[0]! } });
    else if (head === "put" && rest.length === 2) {
      list.push({
        op: {
          $case: "put",
          put: {
            key: rest[0]!,
            value: encoder.encode(rest[1]!),
            modRevision: 0,
            createRevision: 0,
            version: 0,
            ttlMs: 0,
          },
        },
      });
    } else fail(`expected "get KEY", "put KEY VALUE" or "del KEY"`);
  }
  if (section === "if") throw new UsageError(`txn: no "then" line`);
  return request;
}

const STRING = String.raw`"(?:[^"\\]|\\.)*"`;
const COMPARE = new RegExp(String.raw`^(\w+)\(\s*(${STRING}|[^)\s]+)\s*\)(?:\s*(==|!=|<|>)\s*(${STRING}|\S+))?$`);

function parseCompare(text: string, fail: (why: string) => never): TxnRequest["compares"][number] {
  const match = COMPARE.exec(text);
  if (!match) return fail(`expected a compare like mod_revision(KEY) == 5 or exists(KEY)`);
  const [, name, keyText, opText, operandText] = match;
  const key = unquote(keyText!, fail);
  const base = { key, value: new Uint8Array(0), number: 0 };
  if (name === "exists" || name === "missing") {
    if (opText !== undefined) fail(`exists(KEY) and missing(KEY) take nothing more`);
    return { ...base, target: Compare_Target.EXISTS, op: Compare_Op.EQUAL, number: name === "exists" ? 1 : 0 };
  }
  const target = TARGETS[name!];
  if (target === undefined)
    return fail(`unknown compare target "${name}" (value, mod_revision, create_revision, version, exists, missing)`);
  if (opText === undefined) return fail(`${name}(KEY) needs an operator (== != < >) and an operand`);
  const op = OPS[opText]!;
  const operand = unquote(operandText!, fail);
  if (target === Compare_Target.VALUE) return { ...base, target, op, value: encoder.encode(operand) };
  if (!/^\d+$/.test(operand) || !Number.isSafeInteger(Number(operand)))
    fail(`${name} compares a whole number up to ${Number.MAX_SAFE_INTEGER}, not ${JSON.stringify(operand)}`);
  return { ...base, target, op, number: Number(operand) };
}

/** Words of a line: bare runs of non-space, or JSON strings; a `#` outside a string ends the line. */
function tokenize(line: string, fail: (why: string) => never): string[] {
  const words: string[] = [];
  const pattern = /\s*(?:("(?:[^"\\]|\\.)*")|(#.*)|([^\s"]+))/y;
  let match: RegExpExecArray | null;
  while (pattern.lastIndex < line.length && (match = pattern.exec(line))) {
    if (match[2] !== undefined) break;
    words.push(match[1] !== undefined ? unquote(match[1], fail) : match[3]!);
  }
  if (line.slice(pattern.lastIndex).trim() !== "" && !line.slice(pattern.lastIndex).trim().startsWith("#"))
    fail("unreadable text");
  return words;
}

function unquote(text: string, fail: (why: string) => never): string {
  if (!text.startsWith('"')) return text;
  try {
    return JSON.parse(text) as string;
  } catch {
    return fail(`bad string ${text}`);
  }
}
