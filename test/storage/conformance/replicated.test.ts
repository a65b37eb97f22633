import type { Database } from "../../../src/storage/database.ts";
import { startReplicatedLocalGroup } from "../../cluster/replication/local-group.ts";
import { describeDatabaseConformance } from "./database-suite.ts";

/**
 * The database of the leader of a three-member Raft group in one process: every write goes through
 * the group's log (each member's own store applies it, at the same revision), and the same tests
 * hold as for one node. Reads take the leader's read barrier (a ReadIndex round).
 */
describeDatabaseConformance("replicated, the leader of three members", {
  async open(settings) {
    const { group, databases } = await startReplicatedLocalGroup(settings);
    const leader = databases.get((await group.leader()).id)!;
    // Closing the leader's database closes the group.
    const close = leader.close;
    return Object.assign(Object.create(leader) as Database, {
      close: async () => {
        await close();
        await Promise.all([...databases.values()].filter((db) => db !== leader).map((db) => db.close()));
        group.stop();
      },
    });
  },
});
