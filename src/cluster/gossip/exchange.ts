import { deltaBytes, digestBytes, entryBytes } from "./codec.ts";
import type { Delta, Syn } from "./messages.ts";
import type { Digest, NodeState } from "./node-state.ts";
import type { PeerTable } from "./peer-table.ts";

/**
 * The contents of Syn, Ack and Ack2, each filled up to a byte budget (what a datagram leaves after
 * the header). Which digests and deltas go first when not all fit is random, so that over a few
 * rounds every node gets its turn; the answering node's own state goes first because no one has it
 * fresher.
 */

/** What the holder of `state` sends a node whose digest of it is `digest` (undefined: it has none). */
export function deltaFor(state: NodeState, digest: Digest | undefined): Delta | undefined {
  if (digest !== undefined && digest.generation > state.generation) return undefined;
  const fromVersion = digest !== undefined && digest.generation === state.generation ? digest.maxVersion : 0;
  if (fromVersion >= state.maxVersion) return undefined;
  return { nodeId: state.nodeId, generation: state.generation, fromVersion, entries: state.entriesAbove(fromVersion) };
}

/** Whether a digest shows more than `held` (nothing held: anything is more). */
export function isNewer(digest: Digest, held: NodeState | undefined): boolean {
  if (held === undefined) return true;
  return (
    digest.generation > held.generation ||
    (digest.generation === held.generation && digest.maxVersion > held.maxVersion)
  );
}

/** The digests of a Syn: this node's, then a circular run of the others in id order from a random start. */
export function synDigests(
  table: PeerTable,
  random: () => number,
  budgetBytes: number,
): Pick<Syn, "complete" | "digests"> {
  const own = table.self.digest();
  const digests = [own];
  let left = budgetBytes - digestBytes(own);
  const others = table.sortedIds().filter((id) => id !== own.nodeId);
  const start = Math.floor(random() * others.length);
  for (let i = 0; i < others.length; i++) {
    const digest = table.state(others[(start + i) % others.length]!)!.digest();
    left -= digestBytes(digest);
    if (left < 0) break;
    digests.push(digest);
  }
  return { complete: digests.length === others.length + 1, digests };
}

/**
 * B's answer to A's Syn: the deltas A lacks and B's digests of the nodes A has news of. A node A
 * did not list lacks everything if A's list was complete or the node falls within A's run; B's own
 * state goes whenever A did not list B (A may have reached B as a seed, not knowing it).
 */
export function answerSyn(
  table: PeerTable,
  syn: Syn,
  random: () => number,
  budgetBytes: number,
): { requests: Digest[]; deltas: Delta[] } {
  const self = table.self;
  const listed = new Map(syn.digests.map((digest) => [digest.nodeId, digest]));
  const requests: Digest[] = [];
  const others: Delta[] = [];
  let own: Delta | undefined;
  for (const digest of syn.digests) {
    const held = table.state(digest.nodeId);
    if (held === self) own = deltaFor(self, digest);
    else if (table.isQuarantined(digest.nodeId, digest.generation)) continue;
    else if (isNewer(digest, held))
      requests.push(held?.digest() ?? { nodeId: digest.nodeId, generation: 0, maxVersion: 0 });
    else if (digest.nodeId !== syn.senderId) pushDefined(others, deltaFor(held!, digest));
  }
  if (!listed.has(self.nodeId)) own = deltaFor(self, undefined);
  const inRun = runMembership(syn);
  if (inRun !== undefined) {
    for (const id of table.sortedIds()) {
      if (!listed.has(id) && id !== syn.senderId && id !== self.nodeId && inRun(id))
        pushDefined(others, deltaFor(table.state(id)!, undefined));
    }
  }
  shuffle(others, random);
  const deltas = own === undefined ? others : [own, ...others];
  const packedRequests = packDigests(requests, deltas.length > 0 ? Math.floor(budgetBytes / 2) : budgetBytes);
  const requestBytes = packedRequests.reduce((sum, digest) => sum + digestBytes(digest), 0);
  return { requests: packedRequests, deltas: packDeltas(deltas, budgetBytes - requestBytes) };
}

/** A's Ack2: what B's requests ask for. */
export function answerRequests(table: PeerTable, requests: readonly Digest[], budgetBytes: number): Delta[] {
  const deltas: Delta[] = [];
  for (const request of requests) {
    const held = table.state(request.nodeId);
    if (held !== undefined) pushDefined(deltas, deltaFor(held, request));
  }
  return packDeltas(deltas, budgetBytes);
}

/** Whole deltas while they fit; one that does not is cut to the prefix of its entries that does. */
export function packDeltas(deltas: readonly Delta[], budgetBytes: number): Delta[] {
  const out: Delta[] = [];
  let left = budgetBytes;
  for (const delta of deltas) {
    const whole = deltaBytes(delta);
    if (whole <= left) {
      out.push(delta);
      left -= whole;
      continue;
    }
    let bytes = deltaBytes({ ...delta, entries: [] });
    let count = 0;
    while (count < delta.entries.length && bytes + entryBytes(delta.entries[count]!) <= left)
      bytes += entryBytes(delta.entries[count++]!);
    if (count === 0) continue;
    out.push({ ...delta, entries: delta.entries.slice(0, count) });
    left -= bytes;
  }
  return out;
}

function packDigests(digests: readonly Digest[], budgetBytes: number): Digest[] {
  const out: Digest[] = [];
  let left = budgetBytes;
  for (const digest of digests) {
    left -= digestBytes(digest);
    if (left < 0) break;
    out.push(digest);
  }
  return out;
}

/** Whether a node id lies within the run of a Syn's digests (first to last of the sender's others, circular). */
function runMembership(syn: Syn): ((id: string) => boolean) | undefined {
  if (syn.complete) return () => true;
  const first = syn.digests[1]?.nodeId;
  const last = syn.digests.at(-1)!.nodeId;
  if (first === undefined) return undefined;
  return first <= last ? (id) => first <= id && id <= last : (id) => id >= first || id <= last;
}

function pushDefined<T>(list: T[], item: T | undefined): void {
  if (item !== undefined) list.push(item);
}

/** Fisher–Yates with the caller's seeded PRNG. */
export function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
