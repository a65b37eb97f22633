import { type ByteReader, ByteWriter, FormatError, readVersioned } from "../../io/format/bytes.ts";
import { PARTITIONS_MAX } from "../ring/partition-of.ts";
import type { Placement } from "../ring/placement.ts";
import { type MetaCommand, type MetaNode, MetaState } from "./meta-state.ts";

/**
 * The meta group's commands (its entries' data) and its state (its snapshots). Frozen format,
 * commands version 1, state version 3: type codes are never renumbered, a change of layout is a
 * new version. Integers are
 * varints (bytes.ts) unless marked u8; a string is u32 length · UTF-8.
 *
 *   command     u8 version · u8 type · body
 *     1 create              varint partitions · varint replicas
 *     2 putNode             node
 *     3 removeNode          string name
 *     4 setPlacement        varint basedOn · placement
 *     5 reserveTimestamps   varint through
 *   node        string name · string peerAddress
 *   placement   varint n · n × string name (the nodes it names, a table) ·
 *               varint partitions · partitions × (varint count · count × varint index into the table)
 *   state       u8 version · varint partitions · varint replicas (both 0: not created) ·
 *               varint n · n × node · varint placementVersion · placement · varint timestampLimit ·
 *               placement founded (the first placement, empty before it is made) ·
 *               varint m · m × string removed (names of nodes removed and not put again)
 */
const VERSION = 1;
const STATE_VERSION = 3;
const TYPE_CODES = { create: 1, putNode: 2, removeNode: 3, setPlacement: 4, reserveTimestamps: 5 } as const;
const TYPES = new Map(Object.entries(TYPE_CODES).map(([type, code]) => [code as number, type as MetaCommand["type"]]));

export function encodeMetaCommand(command: MetaCommand): Uint8Array {
  const w = new ByteWriter(64).u8(VERSION).u8(TYPE_CODES[command.type]);
  switch (command.type) {
    case "create":
      w.varint(command.partitions).varint(command.replicas);
      break;
    case "putNode":
      writeNode(w, command.node);
      break;
    case "removeNode":
      w.string(command.name);
      break;
    case "setPlacement":
      writePlacement(w.varint(command.basedOn), command.placement);
      break;
    case "reserveTimestamps":
      w.varint(command.through);
      break;
  }
  return w.written().slice();
}

export function decodeMetaCommand(bytes: Uint8Array): MetaCommand {
  return readVersioned(bytes, VERSION, "a meta command", (r) => {
    const at = r.position;
    const type = TYPES.get(r.u8());
    switch (type) {
      case "create": {
        const partitions = r.varint();
        const replicas = r.varint();
        if (partitions < 1 || partitions > PARTITIONS_MAX || replicas < 1)
          throw new FormatError(`a cluster of ${partitions} partitions × ${replicas} replicas`);
        return { type, partitions, replicas };
      }
      case "putNode":
        return { type, node: readNode(r) };
      case "removeNode":
        return { type, name: r.string() };
      case "setPlacement":
        return { type, basedOn: r.varint(), placement: readPlacement(r) };
      case "reserveTimestamps":
        return { type, through: r.varint() };
      default:
        throw new FormatError(`unknown meta command type at byte ${at}`);
    }
  });
}

export function encodeMetaState(state: MetaState): Uint8Array {
  const w = new ByteWriter(256).u8(STATE_VERSION);
  w.varint(state.shape?.partitions ?? 0).varint(state.shape?.replicas ?? 0);
  w.varint(state.nodes.size);
  for (const node of state.nodes.values()) writeNode(w, node);
  writePlacement(w.varint(state.placementVersion), state.placement);
  writePlacement(w.varint(state.timestampLimit), state.founded);
  w.varint(state.removed.size);
  for (const name of state.removed) w.string(name);
  return w.written().slice();
}

export function decodeMetaState(bytes: Uint8Array): MetaState {
  return readVersioned(bytes, STATE_VERSION, "a meta state", (r) => {
    const state = new MetaState();
    const partitions = r.varint();
    const replicas = r.varint();
    if ((partitions === 0) !== (replicas === 0)) throw new FormatError(`a shape of ${partitions} × ${replicas}`);
    if (partitions > 0) state.shape = { partitions, replicas };
    const nodes = count(r, r.remaining / 8, "nodes");
    for (let i = 0; i < nodes; i++) {
      const node = readNode(r);
      state.nodes.set(node.name, node);
    }
    state.placementVersion = r.varint();
    state.placement = readPlacement(r);
    state.timestampLimit = r.varint();
    state.founded = readPlacement(r);
    for (let i = count(r, r.remaining / 4, "removed names"); i > 0; i--) state.removed.add(r.string());
    return state;
  });
}

function writeNode(w: ByteWriter, node: MetaNode): void {
  w.string(node.name).string(node.peerAddress);
}

function readNode(r: ByteReader): MetaNode {
  return { name: r.string(), peerAddress: r.string() };
}

function writePlacement(w: ByteWriter, placement: Placement): void {
  const names = [...new Set(placement.flat())];
  const index = new Map(names.map((name, i) => [name, i]));
  w.varint(names.length);
  for (const name of names) w.string(name);
  w.varint(placement.length);
  for (const replicas of placement) {
    w.varint(replicas.length);
    for (const name of replicas) w.varint(index.get(name)!);
  }
}

function readPlacement(r: ByteReader): Placement {
  // Every name takes 4 bytes at least (its length): a count past that is damage, not a reason to allocate.
  const names = Array.from({ length: count(r, r.remaining / 4, "node names") }, () => r.string());
  return Array.from({ length: count(r, PARTITIONS_MAX, "partitions") }, () =>
    Array.from({ length: count(r, names.length, "replicas of a partition") }, () => {
      const at = r.position;
      const name = names[r.varint()];
      if (name === undefined) throw new FormatError(`a replica at byte ${at} names no node of the table`);
      return name;
    }),
  );
}

/** A varint count, refused past `max`. */
function count(r: ByteReader, max: number, what: string): number {
  const at = r.position;
  const value = r.varint();
  if (value > max) throw new FormatError(`${value} ${what} at byte ${at} (at most ${Math.floor(max)})`);
  return value;
}
