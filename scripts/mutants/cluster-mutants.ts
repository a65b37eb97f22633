import type { Mutant } from "./raft-mutants.ts";

/**
 * Bugs of a replicated server, planted one at a time in a copy of the project
 * (`npm run mutants -- --set cluster`), that the real-process fault tests of test/cluster/nemesis
 * must catch: each breaks what a user of the cluster relies on, not just a line of the core.
 */
export const CLUSTER_MUTANTS: readonly Mutant[] = [
  {
    name: "read-without-barrier",
    description: "a member answers reads from its applied state without a ReadIndex round (stale reads)",
    file: "src/cluster/replication/raft-commit-log.ts",
    search: "    readBarrier,\n",
    replace: "    readBarrier: async () => {},\n",
  },
  {
    name: "ack-before-commit",
    description: "a leader commits, and acknowledges, a write as soon as it is in its own log (no quorum)",
    file: "src/cluster/raft/raft.ts",
    search: "const index = matches[this.quorum - 1]!;",
    replace: "const index = matches[0]!;",
  },
  {
    name: "amnesia",
    description: "a restarted member opens a fresh Raft log instead of the one on disk (votes and entries forgotten)",
    file: "src/node/replicated-database.ts",
    search: "/raft`, (line) => log.warn(line));",
    replace: "/raft-` + process.pid, (line) => log.warn(line));",
  },
];
