import type { ChainCursor, KeyChain, RestoreChains } from "./store-types.ts";
import type { Version } from "./version-chain.ts";

/**
 * `chains` as a ChainCursor: a checkpoint's own, reading in place, or one over the chain objects
 * (a store restored from another's `dumpChains`), which makes a UTF-8 copy of each key.
 */
export function cursorOf(chains: RestoreChains): ChainCursor {
  return chains.cursor?.() ?? new ObjectChainCursor(chains[Symbol.iterator]());
}

const NO_BYTES = new Uint8Array(0);
const encoder = new TextEncoder();

/** The fields every ChainCursor keeps, where its chain and version stand. */
export abstract class ChainCursorFields implements ChainCursor {
  keyBytes: Uint8Array = NO_BYTES;
  keyStart = 0;
  keyLength = 0;
  revision = 0;
  createRevision = 0;
  version = 0;
  expiresAtMs: number | undefined;
  valueBytes: Uint8Array = NO_BYTES;
  valueStart = 0;
  valueLength = -1;
  abstract nextChain(): boolean;
  abstract key(): string;
  abstract nextVersion(): boolean;
}

class ObjectChainCursor extends ChainCursorFields {
  private chain: KeyChain | undefined;
  /** The index of the chain's next version. */
  private next = 0;

  constructor(private readonly chains: Iterator<KeyChain>) {
    super();
  }

  nextChain(): boolean {
    const taken = this.chains.next();
    if (taken.done) return false;
    this.chain = taken.value;
    this.next = 0;
    this.keyBytes = encoder.encode(taken.value.key);
    this.keyLength = this.keyBytes.byteLength;
    return true;
  }

  key(): string {
    return this.chain!.key;
  }

  nextVersion(): boolean {
    const version = this.chain!.versions[this.next];
    if (version === undefined) return false;
    this.next++;
    this.revision = version.revision;
    this.createRevision = version.createRevision;
    this.version = version.version;
    this.expiresAtMs = version.expiresAtMs;
    this.valueBytes = version.value ?? NO_BYTES;
    this.valueLength = version.value === null ? -1 : version.value.byteLength;
    return true;
  }
}

/**
 * The chains `cursor` reads, as objects (for an engine that takes them so): each made as it is
 * taken, its values views valid until the next is taken.
 */
export function* chainObjects(cursor: ChainCursor): Generator<KeyChain> {
  while (cursor.nextChain()) {
    const key = cursor.key();
    const versions: Version[] = [];
    while (cursor.nextVersion()) {
      const { revision, createRevision, version, expiresAtMs, valueBytes, valueStart, valueLength } = cursor;
      const value = valueLength < 0 ? null : valueBytes.subarray(valueStart, valueStart + valueLength);
      versions.push({
        revision,
        createRevision,
        version,
        value,
        ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
      });
    }
    yield { key, versions };
  }
}
