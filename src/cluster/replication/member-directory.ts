import { HomeKvError } from "../../errors.ts";
import type { ConfChange, MemberAddress, NodeId } from "../raft/types.ts";
import { raftIdOf } from "./member-id.ts";

/** What changed in the directory, for whoever keeps connections to the members (the peer transport). */
export type DirectoryChange =
  | { readonly kind: "added"; readonly id: NodeId; readonly member: MemberAddress }
  | { readonly kind: "removed"; readonly id: NodeId; readonly member: MemberAddress };

/**
 * Who the members of a Raft group are: Raft id → name and peer address. It is replicated state:
 * built only from the configuration changes the group applied (entry kind 3 names the member), so
 * every member holds the same one at the same applied index, and a restart rebuilds it by applying
 * the log again. Worked example:
 *
 *   bootstrap  addVoter n1@a:1, addVoter n2@a:2, addVoter n3@a:3    {n1, n2, n3}
 *   add        addLearner n4@a:4                                     {n1, n2, n3, n4}
 *   promote    addVoter n4 (no member: the directory keeps n4@a:4)   {n1, n2, n3, n4}
 *   remove     remove n2                                             {n1, n3, n4}
 *
 * Seeds are where this member can reach members before its log says (the --initial-cluster list):
 * a member joining an existing group knows no member from its empty log, yet must accept the
 * leader's messages. A name is looked up among the members first, then the seeds.
 *
 * Snapshot seam: a Raft snapshot stands for the entries it replaces, so it must carry `members()`;
 * the follower that installs it calls `restore()` with them (the checkpoint-as-snapshot work does
 * both; until then no log is compacted, so the log always holds every change).
 */
export class MemberDirectory {
  private readonly replicated = new Map<NodeId, MemberAddress>();
  private readonly seeds = new Map<NodeId, MemberAddress>();
  /** Every name known, members and seeds: a live view (the peer link looks senders up in it). */
  readonly names = new Map<NodeId, string>();

  constructor(
    seeds: readonly MemberAddress[],
    private readonly onChange: (change: DirectoryChange) => void = () => {},
  ) {
    for (const seed of seeds) this.seeds.set(raftIdOf(seed.name), seed);
    this.refreshNames();
  }

  /** A configuration change the group applied. */
  apply(change: ConfChange): void {
    const known = this.replicated.get(change.node);
    if (change.type === "remove") {
      if (known === undefined) return;
      this.replicated.delete(change.node);
      this.refreshNames();
      this.onChange({ kind: "removed", id: change.node, member: known });
      return;
    }
    const member = change.member ?? known;
    // An add without a name for a node the directory never saw: written by a version without
    // kind 3; the member stays unnamed (reachable through the seeds, if at all).
    if (member === undefined || sameMember(member, known)) return;
    this.replicated.set(change.node, member);
    this.refreshNames();
    this.onChange({ kind: "added", id: change.node, member });
  }

  /** The members (not the seeds), by id. */
  members(): [NodeId, MemberAddress][] {
    return [...this.replicated].sort(([a], [b]) => a - b);
  }

  /** A snapshot's members replace the directory (a follower that installs the leader's snapshot). */
  restore(members: readonly MemberAddress[]): void {
    const next = new Map(members.map((member) => [raftIdOf(member.name), member]));
    for (const [id, member] of [...this.replicated]) {
      if (sameMember(next.get(id), member)) continue;
      this.replicated.delete(id);
      this.onChange({ kind: "removed", id, member });
    }
    for (const [id, member] of next) this.apply({ type: "addLearner", node: id, member });
    this.refreshNames();
  }

  nameOf(id: NodeId): string | undefined {
    return this.names.get(id);
  }

  /** The member's or seed's address; undefined when neither knows `id`. */
  addressOf(id: NodeId): string | undefined {
    return (this.replicated.get(id) ?? this.seeds.get(id))?.peerAddress;
  }

  /**
   * The id a new member `name` gets. Refused when another name known here hashes to the same id
   * (two members would share one vote and one log position): pick another name.
   */
  idForNewMember(name: string): NodeId {
    const id = raftIdOf(name);
    const holder = this.replicated.get(id) ?? this.seeds.get(id);
    if (holder !== undefined && holder.name !== name)
      throw new HomeKvError(
        "E_MEMBERSHIP",
        `${name} and ${holder.name} have the same Raft id (${id}, a hash of the name): give the new member another name`,
      );
    return id;
  }

  private refreshNames(): void {
    this.names.clear();
    for (const [id, seed] of this.seeds) this.names.set(id, seed.name);
    for (const [id, member] of this.replicated) this.names.set(id, member.name);
  }
}

function sameMember(a: MemberAddress | undefined, b: MemberAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.name === b.name && a.peerAddress === b.peerAddress;
}
