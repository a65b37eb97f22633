import { type Placement, type PlacementShape, place } from "../ring/placement.ts";

/** A node of the cluster as the meta group records it: its name, and where its peers reach it. */
export interface MetaNode {
  readonly name: string;
  readonly peerAddress: string;
}

/**
 * The meta group's commands (its Raft entries, meta-format.ts). The placement is proposed as data by
 * the leader (`nextPlacement`), not computed where it is applied: members of different versions,
 * in a rolling upgrade, must apply the same entry to the same state.
 */
export type MetaCommand =
  | { readonly type: "create"; readonly partitions: number; readonly replicas: number }
  | { readonly type: "putNode"; readonly node: MetaNode }
  | { readonly type: "removeNode"; readonly name: string }
  /** Replaces the placement numbered `basedOn` (a proposal made from an older one is refused). */
  | { readonly type: "setPlacement"; readonly basedOn: number; readonly placement: Placement }
  | { readonly type: "reserveTimestamps"; readonly through: number };

/** What applying a command did: refusals are results (every member refuses alike), not exceptions. */
export type MetaOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const OK: MetaOutcome = { ok: true };
const refused = (reason: string): MetaOutcome => ({ ok: false, reason });

/**
 * The state the meta group replicates: the cluster's shape (partitions and replicas, fixed when it
 * is created), its nodes, the placement of partitions on them (numbered: each change takes the
 * next number), and the timestamp oracle's reserved limit. Gossip says who is alive; this is who
 * belongs and who should hold what. Pure and deterministic.
 */
export class MetaState {
  shape: PlacementShape | undefined;
  readonly nodes = new Map<string, MetaNode>();
  /** Names of nodes removed and not put again: one may come back only once no group counts it. */
  readonly removed = new Set<string>();
  placement: Placement = [];
  placementVersion = 0;
  /**
   * The first placement: each partition's founding replicas, whose group logs begin with its
   * founding voters (the same entries on each); a replica placed later starts empty and is added.
   */
  founded: Placement = [];
  timestampLimit = 0;

  apply(command: MetaCommand): MetaOutcome {
    switch (command.type) {
      case "create":
        if (this.shape) return refused("the cluster was created already");
        this.shape = { partitions: command.partitions, replicas: command.replicas };
        return OK;
      case "putNode":
        this.nodes.set(command.node.name, command.node);
        this.removed.delete(command.node.name);
        return OK;
      case "removeNode":
        if (!this.nodes.has(command.name)) return refused(`${command.name} is not a node of the cluster`);
        if (this.nodes.size === 1) return refused(`${command.name} is the cluster's last node`);
        this.nodes.delete(command.name);
        this.removed.add(command.name);
        return OK;
      case "setPlacement": {
        if (command.basedOn !== this.placementVersion)
          return refused(
            `a placement made from number ${command.basedOn}; the current one is ${this.placementVersion}`,
          );
        const wrong = this.misfit(command.placement);
        if (wrong) return refused(wrong);
        this.placement = command.placement;
        if (this.placementVersion === 0) this.founded = command.placement;
        this.placementVersion++;
        return OK;
      }
      case "reserveTimestamps":
        this.timestampLimit = Math.max(this.timestampLimit, command.through);
        return OK;
    }
  }

  /**
   * What the leader should propose for the placement to fit the nodes (place(), moving as little as
   * possible), or undefined when it fits or the cluster is not created yet.
   */
  nextPlacement(): MetaCommand | undefined {
    if (!this.shape || this.nodes.size === 0) return undefined;
    const previous = this.placement.length === 0 ? undefined : this.placement;
    const next = place(previous, [...this.nodes.keys()], this.shape);
    if (previous && next.every((replicas, p) => sameList(replicas, previous[p]!))) return undefined;
    return { type: "setPlacement", basedOn: this.placementVersion, placement: next };
  }

  /** Why `placement` cannot be this cluster's (undefined: it can). */
  private misfit(placement: Placement): string | undefined {
    const { shape } = this;
    if (!shape) return "the cluster is not created yet";
    if (placement.length !== shape.partitions)
      return `a placement of ${placement.length} partitions for a cluster of ${shape.partitions}`;
    const width = Math.min(shape.replicas, this.nodes.size);
    for (const [p, replicas] of placement.entries()) {
      if (replicas.length !== width) return `partition ${p} has ${replicas.length} replicas, not ${width}`;
      if (new Set(replicas).size !== replicas.length) return `partition ${p} names a node twice`;
      const stranger = replicas.find((name) => !this.nodes.has(name));
      if (stranger !== undefined) return `partition ${p} is placed on ${stranger}, which is no node of the cluster`;
    }
    return undefined;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}
