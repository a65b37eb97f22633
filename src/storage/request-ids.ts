import { assert } from "../errors.ts";

/** What a write that carried a request id did: what a retry of the same id is answered with. */
export interface RememberedWrite {
  readonly revision: number;
  readonly deleted: number;
  /** For a transaction: which branch ran. */
  readonly succeeded?: boolean;
}

/** Request ids are remembered for this many writes that carried one (SetRequest.request_id). */
export const REQUEST_IDS_REMEMBERED = 100_000;

/**
 * The request ids of the latest writes that carried one, and what each did, so that a retry of the
 * same id (a client failing over after an unknown outcome) applies at most once. Forgets the oldest
 * first; in a cluster it is fed at apply, in log order, so every member forgets the same ones.
 */
export class RequestIdTable {
  private readonly writes = new Map<string, RememberedWrite>();

  constructor(readonly capacity = REQUEST_IDS_REMEMBERED) {
    assert(capacity > 0, "a request id table holds at least one id");
  }

  get(id: string): RememberedWrite | undefined {
    return this.writes.get(id);
  }

  remember(id: string, write: RememberedWrite): void {
    assert(!this.writes.has(id), () => `request id ${id} applied twice`);
    this.writes.set(id, {
      revision: write.revision,
      deleted: write.deleted,
      ...(write.succeeded === undefined ? {} : { succeeded: write.succeeded }),
    });
    if (this.writes.size > this.capacity) this.writes.delete(this.writes.keys().next().value!);
  }

  /** Every id with what it did, oldest first (a checkpoint's copy). */
  entries(): { id: string; revision: number; deleted: number; succeeded?: boolean }[] {
    return [...this.writes].map(([id, write]) => ({ id, ...write }));
  }

  /** Holds exactly `entries`, oldest first (a checkpoint loaded, a leader's snapshot installed). */
  replaceWith(entries: readonly { id: string; revision: number; deleted: number; succeeded?: boolean }[]): void {
    this.writes.clear();
    for (const { id, ...write } of entries) this.remember(id, write);
  }

  get size(): number {
    return this.writes.size;
  }
}
