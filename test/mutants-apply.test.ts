import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { BACKUP_MUTANTS } from "../scripts/mutants/backup-mutants.ts";
import { CHECKPOINT_CALL_MUTANTS } from "../scripts/mutants/checkpoint-call-mutants.ts";
import { CLUSTER_MUTANTS } from "../scripts/mutants/cluster-mutants.ts";
import { FLSM_MUTANTS } from "../scripts/mutants/flsm-mutants.ts";
import { META_MUTANTS } from "../scripts/mutants/meta-mutants.ts";
import { MOVES_MUTANTS } from "../scripts/mutants/moves-mutants.ts";
import { PSIM_MUTANTS } from "../scripts/mutants/psim-mutants.ts";
import { RAFT_MUTANTS } from "../scripts/mutants/raft-mutants.ts";
import { REPLICATION_MUTANTS } from "../scripts/mutants/replication-mutants.ts";
import { RING_MUTANTS } from "../scripts/mutants/ring-mutants.ts";
import { plant } from "../scripts/mutants/sandbox.ts";
import { STORAGE_MUTANTS } from "../scripts/mutants/storage-mutants.ts";
import { TXN_MUTANTS } from "../scripts/mutants/txn-mutants.ts";

/**
 * `npm run mutants` takes minutes and is not part of CI; a planted bug whose code moved would only
 * be noticed there. Here every one must still apply, once, to the code as it is now, and change it.
 */
test("every mutant of npm run mutants applies to the current code exactly once", () => {
  const stale: string[] = [];
  for (const mutant of [
    ...RAFT_MUTANTS,
    ...REPLICATION_MUTANTS,
    ...CLUSTER_MUTANTS,
    ...MOVES_MUTANTS,
    ...STORAGE_MUTANTS,
    ...RING_MUTANTS,
    ...META_MUTANTS,
    ...TXN_MUTANTS,
    ...PSIM_MUTANTS,
    ...FLSM_MUTANTS,
    ...CHECKPOINT_CALL_MUTANTS,
    ...BACKUP_MUTANTS,
  ]) {
    const source = readFileSync(resolve(import.meta.dir, "..", mutant.file), "utf8");
    try {
      expect(plant(source, mutant)).not.toBe(source);
    } catch (error) {
      stale.push(error instanceof Error ? error.message.split("\n")[0]! : String(error));
    }
  }
  expect(stale).toEqual([]);
});
