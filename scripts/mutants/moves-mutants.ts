import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in how a partitioned cluster's node keeps its replicas to the placement
 * (src/node/partition-replicas.ts, src/node/partitioned-member.ts), one at a time
 * (`npm run mutants -- --set moves`), judged by the in-process tests of PartitionReplicas and the
 * real-process test of a join and a removal. Same rules as raft-mutants.ts: `search` occurs
 * exactly once in `file`.
 */
const REPLICAS = "src/node/partition-replicas.ts";
const NODE = "src/node/partitioned-member.ts";

export const MOVES_MUTANTS: readonly Mutant[] = [
  {
    name: "retire-while-counted",
    description: "a replica the placement no longer lists is retired while its group still counts it",
    file: REPLICAS,
    search: "          if (!isMember(conf, self)) await this.retire(partition);",
    replace: "          await this.retire(partition);",
  },
  {
    name: "retire-on-own-view",
    description:
      "a replica is kept while its own configuration lists it: a member removed before it heard so is never retired",
    file: REPLICAS,
    search: "          if (isMember(conf, self)) conf = await this.options.members(partition).catch(() => conf);\n",
    replace: "",
  },
  {
    name: "meta-group-not-moved",
    description:
      "the meta group's leader never adds a node put in the cluster: the newcomer never learns the placement",
    file: NODE,
    search: "    mover.step(metaGroup.driver, [...metaGroup.state.nodes.keys(), ...departing()].map(raftIdOf));\n",
    replace: "",
  },
  {
    name: "newcomer-never-placed",
    description:
      "a node starts only the replicas it founded or holds a log of: the partitions moved to it are never started",
    file: REPLICAS,
    search: "      if (!this.placement[partition]?.includes(self) && !kept && !founding) continue;",
    replace: "      if (!kept && !founding) continue;",
  },
  {
    name: "restart-drops-counted-replica",
    description:
      "a node restarted mid-move starts only the replicas placed on it: one its group still counts as a voter is gone",
    file: REPLICAS,
    search: "      const kept = held.has(id) && engine.group(id).lastIndex() > 0;",
    replace: "      const kept = false;",
  },
];
