import { expect, test } from "bun:test";
import { ByteWriter } from "../../src/io/format/bytes.ts";
import { commandBytesMax, decodeCommand, encodeCommand, writeCommand } from "../../src/storage/command-format.ts";
import type { Command } from "../../src/storage/ops.ts";
import { bytes } from "../helpers/bytes.ts";

// Keys of one-, two- and three-byte UTF-8 units and a surrogate pair (4 bytes for 2 units).
const KEYS = ["k", "clé", "キー", "😀", ""];

const COMMANDS: readonly Command[] = [
  { ops: [] },
  {
    kind: "batch",
    ops: KEYS.flatMap((key, i) => [
      { key: `${key}p`, value: bytes("v".repeat(i * 10)) },
      { key: `${key}t`, value: bytes("ttl"), expiresAtMs: 1_700_000_000_000 + i },
      { key: `${key}d`, value: null },
    ]),
  },
  {
    kind: "txn",
    txn: {
      compares: [
        // Both fields, as a decoded compare has them.
        { key: "キー", target: "value", op: "==", value: bytes("x".repeat(50)), number: 0 },
        { key: "😀", target: "version", op: ">", value: bytes(""), number: 3 },
      ],
      success: [{ get: "clé" }, { key: "a", value: bytes("1") }, { key: "b", value: null }],
      failure: [{ key: "c", value: bytes("2"), expiresAtMs: 5 }],
    },
  },
  { kind: "compact", compactTo: 2 ** 40 },
  { kind: "expire", keys: KEYS.map((key, i) => ({ key: `${key}e`, revision: i + 1 })) },
];

test("commandBytesMax bounds what writeCommand writes for every kind of command and op, with the WAL's revision", () => {
  for (const command of COMMANDS) {
    const out = new ByteWriter(1);
    writeCommand(out, command, 2 ** 50);
    expect(out.size).toBeLessThanOrEqual(commandBytesMax(command));
    // Within the strings' slack: 3 bytes a unit against at least 1 written.
    expect(commandBytesMax(command) - out.size).toBeLessThan(100 + 2 * JSON.stringify(command).length);
  }
});

test("a command encoded in a buffer of commandBytesMax decodes back unchanged", () => {
  // A batch decodes without its optional kind.
  for (const command of COMMANDS)
    expect(decodeCommand(encodeCommand(command))).toEqual(
      command.kind === undefined || command.kind === "batch" ? { ops: command.ops } : command,
    );
});
