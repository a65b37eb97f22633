import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { readCommand, writeCommand } from "../../storage/command-format.ts";
import type { Command } from "../../storage/ops.ts";
import type { NodeId } from "../raft/types.ts";

/**
 * A command as a Raft entry of the store's group carries it (frozen; a change of layout is a new
 * version):
 *
 *   u8 version 1 · varint origin · varint seq · string request id · command (command-format.ts, no revision)
 *
 * `origin` is the member that took the client's request and waits to answer it once the entry is
 * applied there, with its own sequence number `seq` (0 and 0 when the leader took it: it matches
 * its proposals by index and term). The request id is empty when the client gave none.
 */
export interface EntryCommand {
  readonly origin: NodeId;
  readonly seq: number;
  readonly requestId: string;
  readonly command: Command;
}

const VERSION = 1;
/** What the shared writer keeps between entries; a larger command's buffer is let go after it. */
const SCRATCH_BYTES = 4096;
/** One writer for every entry (encoding is synchronous): each costs one copy, not a buffer of its own. */
let scratch = new ByteWriter(SCRATCH_BYTES);

export function encodeEntryCommand(entry: EntryCommand): Uint8Array {
  scratch.reset();
  scratch.u8(VERSION).varint(entry.origin).varint(entry.seq).string(entry.requestId);
  writeCommand(scratch, entry.command);
  const bytes = scratch.written().slice();
  if (bytes.byteLength > SCRATCH_BYTES) scratch = new ByteWriter(SCRATCH_BYTES);
  return bytes;
}

export function decodeEntryCommand(bytes: Uint8Array): EntryCommand {
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version !== VERSION) throw new FormatError(`unknown entry command version ${version}`);
  const origin = r.varint();
  const seq = r.varint();
  const requestId = r.string();
  return { origin, seq, requestId, command: readCommand(r, { revision: false }) };
}
