import { assert } from "../../errors.ts";

/** The keys the gossiper writes itself. Their names travel in datagrams: frozen. */
export const KEY_GRPC_ADDRESS = "grpc";
export const KEY_GOSSIP_ADDRESS = "gossip";
export const KEY_STATUS = "status";
export const KEY_HEARTBEAT = "hb";
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  KEY_GRPC_ADDRESS,
  KEY_GOSSIP_ADDRESS,
  KEY_STATUS,
  KEY_HEARTBEAT,
]);

/** What a node says about itself; alive / suspect / dead are each observer's own judgement. */
export type AnnouncedStatus = "alive" | "left";

/** Node ids and cluster ids: ASCII, so that every node orders them the same way. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,31}$/;
/** One entry must always fit in a datagram, however full the state. */
export const VALUE_BYTES_MAX = 255;
export const KEYS_PER_NODE_MAX = 32;

export interface Entry {
  key: string;
  value: string;
  version: number;
}

export interface Digest {
  nodeId: string;
  /** 0 with maxVersion 0: "I know nothing of this node". */
  generation: number;
  maxVersion: number;
}

/**
 * One node's versioned state as some node knows it (scuttlebutt: van Renesse et al., "Efficient
 * reconciliation and flow control for anti-entropy protocols", 2008). Each write by the owner takes
 * the next version of its (node, generation); the state keeps the newest entry per key. Whoever has
 * seen version v holds every entry still current up to v, so what it lacks is exactly "every entry
 * above v", sent oldest first: a prefix of that list is as good a state as any, only older.
 *
 *   owner writes   grpc=a:1 (v1)  gossip=a:2 (v2)  status=alive (v3)  hb=1 (v4)  hb=2 (v5)
 *   state          grpc@1  gossip@2  status@3  hb@5        maxVersion 5
 *   above v2       status@3  hb@5                          (hb@4 was overwritten: nothing lost)
 *
 * A restart starts a new generation at version 0; the higher generation replaces the lower whole.
 */
export class NodeState {
  private readonly entries = new Map<string, Entry>();
  private max = 0;
  private beats = 0;

  constructor(
    readonly nodeId: string,
    readonly generation: number,
  ) {
    assert(ID_PATTERN.test(nodeId), () => `invalid node id ${JSON.stringify(nodeId)}`);
    assert(
      Number.isSafeInteger(generation) && generation >= 1,
      () => `generation must be a positive integer, not ${generation}`,
    );
  }

  get maxVersion(): number {
    return this.max;
  }

  get heartbeat(): number {
    return this.beats;
  }

  get keyCount(): number {
    return this.entries.size;
  }

  get(key: string): string | undefined {
    return this.entries.get(key)?.value;
  }

  digest(): Digest {
    return { nodeId: this.nodeId, generation: this.generation, maxVersion: this.max };
  }

  /** The owner's write: the next version. */
  set(key: string, value: string): void {
    assert(KEY_PATTERN.test(key), () => `invalid state key ${JSON.stringify(key)}`);
    assert(value.isWellFormed(), () => `value of ${key} is not well-formed UTF-16`);
    assert(utf8.encode(value).byteLength <= VALUE_BYTES_MAX, () => `value of ${key} over ${VALUE_BYTES_MAX} bytes`);
    assert(this.entries.has(key) || this.entries.size < KEYS_PER_NODE_MAX, () => `more than ${KEYS_PER_NODE_MAX} keys`);
    this.store({ key, value, version: this.max + 1 });
  }

  /** Entries above `fromVersion`, oldest first. */
  entriesAbove(fromVersion: number): Entry[] {
    const out: Entry[] = [];
    for (const entry of this.entries.values()) if (entry.version > fromVersion) out.push(entry);
    return out.sort((a, b) => a.version - b.version);
  }

  /**
   * Applies a delta: `entries` are every entry of the sender above `fromVersion`, or a prefix of
   * them, ascending. The caller checks that there is no gap (fromVersion ≤ maxVersion). Returns
   * whether the heartbeat advanced.
   */
  apply(fromVersion: number, entries: readonly Entry[]): boolean {
    if (fromVersion > this.max) assert(false, () => `delta from version ${fromVersion} leaves a gap above ${this.max}`);
    const beatsBefore = this.beats;
    for (const entry of entries) {
      const held = this.entries.get(entry.key);
      if (held !== undefined ? held.version >= entry.version : this.entries.size >= KEYS_PER_NODE_MAX) continue;
      this.store(entry);
    }
    return this.beats > beatsBefore;
  }

  /** The keys the gossiper does not write itself: load, zone… */
  metadata(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const entry of this.entries.values()) if (!RESERVED_KEYS.has(entry.key)) out[entry.key] = entry.value;
    return out;
  }

  private store(entry: Entry): void {
    this.entries.set(entry.key, entry);
    this.max = Math.max(this.max, entry.version);
    if (entry.key === KEY_HEARTBEAT) this.beats = parseCounter(entry.value);
  }
}

const utf8 = new TextEncoder();

/** A heartbeat as published: decimal digits. What is not a non-negative safe integer counts as 0. */
function parseCounter(value: string): number {
  const counter = Number(value);
  return Number.isSafeInteger(counter) && counter >= 0 && value.length > 0 ? counter : 0;
}
