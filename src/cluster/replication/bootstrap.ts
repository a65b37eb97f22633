import type { RaftStorage } from "../raft/storage.ts";
import type { Entry, MemberAddress } from "../raft/types.ts";
import { raftIdOf } from "./member-id.ts";
import type { RaftPersistence } from "./raft-driver.ts";

/**
 * How a member starts the first time (etcd's --initial-cluster-state): "new" founds a group with
 * the members of --initial-cluster as its voters; "existing" joins a group that runs already, and
 * waits, a member of nothing, until its leader adds it (`homekv cluster add`). After the first
 * start the log decides and the setting is not read again.
 */
export const INITIAL_CLUSTER_STATES = ["new", "existing"] as const;
export type InitialClusterState = (typeof INITIAL_CLUSTER_STATES)[number];

/**
 * The entries that found a group: one "add voter" per member, naming it, in name order, at
 * indexes 1..n of term 1 — the same bytes on every founding member whatever order it was given
 * the list in. They are committed from the start (etcd's bootstrap does the same): the group's
 * first configuration is in its log, so a member that joins later learns every member from the
 * log alone, from index 1.
 */
export function foundingEntries(members: readonly Founder[], idOf = raftIdOf): Entry[] {
  const sorted = [...members].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sorted.map((member, i) => ({
    index: i + 1,
    term: 1,
    data: null,
    conf: {
      type: "addVoter",
      node: idOf(member.name),
      ...(member.peerAddress === undefined ? {} : { member: { name: member.name, peerAddress: member.peerAddress } }),
    },
  }));
}

/**
 * The founders a log's founding entries name, with their addresses (as foundingEntries wrote
 * them, from index 1); none when the log does not begin with them (it was compacted past them, or
 * its group was founded without addresses).
 */
export function foundersInLog(log: RaftStorage): MemberAddress[] {
  if (log.firstIndex() !== 1) return [];
  const founders: MemberAddress[] = [];
  for (let index = 1; index <= log.lastIndex() && log.term(index) === 1; index++) {
    const [entry] = log.entries(index, index + 1);
    if (entry?.conf?.type !== "addVoter" || entry.conf.member === undefined) break;
    founders.push(entry.conf.member);
  }
  return founders;
}

/**
 * A founding voter: its name, and where its peers reach it when the group's members learn that
 * from its log (a partition's group does not: the meta group says where each node is).
 */
export type Founder = Pick<MemberAddress, "name"> & { readonly peerAddress?: string };

/**
 * Writes the founding entries into a log that has never had a term (a first start with "new"),
 * synced; anything else is left as it is. A founding write cut short by a crash (entries kept,
 * hard state lost) has no term either, and is written again whole.
 */
export async function foundGroupIfNew(
  log: RaftStorage & RaftPersistence,
  members: readonly Founder[],
  state: InitialClusterState,
  idOf = raftIdOf,
): Promise<boolean> {
  if (state !== "new" || log.hardState().term !== 0) return false;
  const entries = foundingEntries(members, idOf);
  await log.persist({ term: 1, vote: 0, commit: entries.length }, entries, true);
  return true;
}
