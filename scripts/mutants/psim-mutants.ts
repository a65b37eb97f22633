import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in a partitioned cluster's node, one at a time (`npm run mutants -- --set
 * psim`), judged by the partitioned simulation alone (test/cluster/partitioned-sim): three planted
 * by hand (two in the read path, one in the replicas' retirement) and two of the fixes of the bugs
 * the simulation found, each undone. The other three fixes undone are caught rarely by its seeds
 * today (each run has moved since its seed found it) and surely by a test of their own: they are
 * in the raft (vote-as-non-member), ring (move-promotes-before-its-addition) and replication
 * (rpc-ids-from-one) sets. Same rules as raft-mutants.ts: `search` occurs exactly once in `file`.
 */
const MEMBER = "src/node/partitioned-member.ts";

export const PSIM_MUTANTS: readonly Mutant[] = [
  {
    name: "psim-read-past-committed",
    description:
      "a reader that finds a lock's transaction committed reads past it whatever its commit timestamp (never rolls it forward)",
    file: "src/cluster/txn/coordinator.ts",
    search: "      if (status.commitTs > ts) bypass.add(lock.startTs);",
    replace: "      if (status.commitTs > -1) bypass.add(lock.startTs);",
  },
  {
    name: "psim-read-at-newest",
    description: "a partition answers a read at a timestamp with its newest versions",
    file: "src/cluster/txn/partition-group.ts",
    search: "    const at = Math.min(ts, this.store.revision);",
    replace: "    const at = this.store.revision;",
  },
  {
    name: "psim-retire-placed-replica",
    description:
      "a replica the placement gives this node is retired when its group's leader does not count it yet (a newcomer)",
    file: "src/node/partition-replicas.ts",
    search: "          if (placed === undefined || placed.includes(this.options.self) || group.driver.leads) continue;",
    replace: "          if (placed === undefined || group.driver.leads) continue;",
  },
  {
    name: "psim-removed-node-leaves-meta-at-once",
    description: "a removed node leaves the meta group at once: it may miss the placement that moves its replicas away",
    file: MEMBER,
    search: "    mover.step(metaGroup.driver, [...metaGroup.state.nodes.keys(), ...departing()].map(raftIdOf));",
    replace: "    mover.step(metaGroup.driver, [...metaGroup.state.nodes.keys()].map(raftIdOf));",
  },
  {
    name: "psim-unknown-sender-dropped",
    description: "a node drops the Raft messages of a node it does not name yet (one added while it was behind)",
    file: MEMBER,
    search: "  const host = new RaftHost({ channels, names, learnName, tickMs, timers });",
    replace: "  const host = new RaftHost({ channels, names, tickMs, timers });",
  },
];
