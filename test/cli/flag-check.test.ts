import { expect, test } from "bun:test";
import type { ArgsDef } from "citty";
import { checkFlags } from "../../src/cli/flag-check.ts";

const ARGS: ArgsDef = {
  port: { type: "string", alias: "p" },
  "if-revision": { type: "string" },
  json: { type: "boolean" },
  keys: { type: "positional" },
};

const refused = (tokens: string[]) => {
  try {
    checkFlags("del", tokens, ARGS);
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
};

test("flags the command has, with their values, pass: long, camelCase, alias, attached, =, --no- of a switch", () => {
  for (const tokens of [
    ["k", "--port", "1"],
    ["k", "-p", "1"],
    ["k", "-p1"],
    ["k", "--port=1"],
    ["k", "--if-revision", "3", "--json"],
    ["k", "--ifRevision", "3"],
    ["k", "--no-json"],
    ["--port", "-1", "k"],
    ["k", "-"],
  ])
    expect(refused(tokens)).toBeUndefined();
});

test("a flag the command does not have is refused, before its value becomes a key", () => {
  expect(refused(["k", "--revision", "5"])).toBe("homekv del has no flag --revision (homekv del --help lists them)");
  expect(refused(["k", "--tll=5s"])).toBe("homekv del has no flag --tll (homekv del --help lists them)");
  expect(refused(["k", "-x"])).toBe("homekv del has no flag -x (homekv del --help lists them)");
  expect(refused(["k", "--keys", "a"])).toBe("homekv del has no flag --keys (homekv del --help lists them)");
});

test("a flag that takes a value given none is refused, not read as its default", () => {
  expect(refused(["k", "-p"])).toBe("-p needs a value");
  expect(refused(["k", "--port="])).toBe("--port needs a value");
  expect(refused(["k", "--port", "--json"])).toBe("--port needs a value");
  expect(refused(["k", "--if-revision"])).toBe("--if-revision needs a value");
});

test("--no- of a flag that takes a value is refused", () => {
  expect(refused(["k", "--no-if-revision"])).toBe("--if-revision takes a value: --no-if-revision says nothing");
  expect(refused(["k", "--no-port"])).toBe("--port takes a value: --no-port says nothing");
});
