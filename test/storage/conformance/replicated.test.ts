import { raftCommitLog, storeStateMachine } from "../../../src/cluster/replication/raft-commit-log.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { assembleDatabase, createObservedStore, type Database } from "../../../src/storage/database.ts";
import type { ApplyResult } from "../../../src/storage/ops.ts";
import { startLocalGroup } from "../../cluster/replication/local-group.ts";
import { describeDatabaseConformance } from "./database-suite.ts";

/**
 * The database of the leader of a three-member Raft group in one process: every write goes through
 * the group's log (each member's own store applies it, at the same revision), and the same tests
 * hold as for one node. Reads here are the leader's local ones.
 */
describeDatabaseConformance("replicated, the leader of three members", {
  async open(settings) {
    const databases = new Map<number, Database>();
    const stores = new Map<number, ReturnType<typeof createObservedStore>>();
    const group = await startLocalGroup<ApplyResult | undefined>((id) => {
      const observed = createObservedStore(settings);
      stores.set(id, observed);
      return storeStateMachine(observed.store, (entry) => observed.store.apply(entry));
    });
    for (const member of group.members) {
      const { store, expiry, watchHub } = stores.get(member.id)!;
      databases.set(
        member.id,
        assembleDatabase({
          store,
          expiry,
          watchHub,
          log: raftCommitLog(member.driver),
          gcSliceKeysMax: settings.gcSliceKeysMax,
          checkpoint: () => Promise.reject(new HomeKvError("E_NOT_PERSISTENT", "no checkpoints in this test")),
        }),
      );
    }
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
