import { replicatedDatabase, storeStateMachine } from "../../../src/cluster/replication/raft-commit-log.ts";
import { createObservedStore, type Database, type ObservedStore } from "../../../src/storage/database.ts";
import type { ApplyResult } from "../../../src/storage/ops.ts";
import { startLocalGroup } from "../../cluster/replication/local-group.ts";
import { describeDatabaseConformance } from "./database-suite.ts";

/**
 * The database of the leader of a three-member Raft group in one process: every write goes through
 * the group's log (each member's own store applies it, at the same revision), and the same tests
 * hold as for one node. Reads take the leader's read barrier (a ReadIndex round).
 */
describeDatabaseConformance("replicated, the leader of three members", {
  async open(settings) {
    const observed = new Map<number, ObservedStore>();
    const group = await startLocalGroup<ApplyResult | undefined>((id) => {
      const store = createObservedStore(settings);
      observed.set(id, store);
      return storeStateMachine(store.store, (entry) => store.store.apply(entry));
    });
    const databases = group.members.map((member) =>
      replicatedDatabase({ observed: observed.get(member.id)!, driver: member.driver, readTimeoutMs: 5_000 }),
    );
    const leader = databases[(await group.leader()).id - 1]!;
    // Closing the leader's database closes the group.
    const close = leader.close;
    return Object.assign(Object.create(leader) as Database, {
      close: async () => {
        await close();
        await Promise.all(databases.filter((db) => db !== leader).map((db) => db.close()));
        group.stop();
      },
    });
  },
});
