import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in the replication layer (src/cluster/replication), one at a time
 * (`npm run mutants -- --set replication`), each judged by the replication tests, the server
 * simulation first among them. Same rules as raft-mutants.ts: `search` occurs exactly once in `file`.
 */
const COMMIT_LOG = "src/cluster/replication/raft-commit-log.ts";
const DRIVER = "src/cluster/replication/raft-driver.ts";
const FORWARDED = "src/cluster/replication/forwarded-writes.ts";
const LINK = "src/cluster/replication/peer-link.ts";

export const REPLICATION_MUTANTS: readonly Mutant[] = [
  {
    name: "request-id-unchecked",
    description:
      "the state machine applies a write whose request id it applied before (a retry that reached the log twice)",
    file: COMMIT_LOG,
    search:
      '        if (seen) result = { ...seen, duplicate: true };\n        else {\n          result = store.apply({ ...decoded.command, revision: store.revision + 1 });\n          if (requestId !== "") replica.requestIds.remember(requestId, result);\n        }\n',
    replace:
      '        result = store.apply({ ...decoded.command, revision: store.revision + 1 });\n        if (requestId !== "" && !seen) replica.requestIds.remember(requestId, result);\n',
  },
  {
    name: "read-without-barrier",
    description: "a linearizable read reads the member's applied state with no ReadIndex round",
    file: COMMIT_LOG,
    search: "    readBarrier,\n",
    replace: "    readBarrier: async () => {},\n",
  },
  {
    name: "checkpoint-without-barrier",
    description:
      "the Checkpoint call writes a follower's applied state without a ReadIndex round (missing acknowledged writes)",
    file: COMMIT_LOG,
    search: "          await catchUpForCheckpoint(request, readBarrier);\n",
    replace: "          await catchUpForCheckpoint({ serializable: true }, readBarrier);\n",
  },
  {
    name: "checkpoint-serializable-waits",
    description:
      "a serializable Checkpoint call still waits for a ReadIndex round: a member cut off from its quorum cannot checkpoint",
    file: COMMIT_LOG,
    search: "          await catchUpForCheckpoint(request, readBarrier);\n",
    replace: "          await catchUpForCheckpoint(undefined, readBarrier);\n",
  },
  {
    name: "checkpoint-hint-on-any-failure",
    description:
      "any failure of a Checkpoint call's ReadIndex round (a member shutting down, a disk error) points at a serializable checkpoint",
    file: "src/cluster/replication/member-checkpoints.ts",
    search: "    throw error instanceof ReadTimeoutError ? timedOut(error.message) : error;\n",
    replace: "    throw timedOut(describeError(error));\n",
  },
  {
    name: "forwarded-resolves-on-index",
    description: "a forwarded write is answered by whatever entry is applied at the index the leader gave it",
    file: FORWARDED,
    search: "      this.settle(displaced)?.reject(dropped(entry.index));",
    replace: "      this.settle(displaced)?.resolve(result);",
  },
  {
    name: "proposal-resolves-on-index",
    description: "the leader answers its own proposal with whatever entry is applied at its index, whatever its term",
    file: DRIVER,
    search: "    if (proposal.term === entry.term) {",
    replace: "    if (true) {",
  },
  {
    name: "read-before-applied",
    description: "reads are served once the read index is known, before the member has applied up to it",
    file: DRIVER,
    search: "if (batch?.index !== undefined && batch.index <= this.applied) {",
    replace: "if (batch?.index !== undefined) {",
  },
  {
    name: "read-joins-batch-in-flight",
    description:
      "a read arriving while a ReadIndex request is out joins it, though a write may have completed since it was sent",
    file: DRIVER,
    search: "      this.waitingReads.push(waiter);\n      this.sendReads();",
    replace: "      (this.readBatch?.waiters ?? this.waitingReads).push(waiter);\n      this.sendReads();",
  },
  {
    name: "forwarded-seq-from-one",
    description:
      "every process of a member numbers its forwarded writes from 1 (the bug the simulation found, seed 100096)",
    file: COMMIT_LOG,
    search: "const firstSeq = 1 + Math.floor(random() * FIRST_SEQ_SPAN);",
    replace: "const firstSeq = 1;",
  },
  {
    name: "link-one-payload",
    description:
      "a turn's messages to a peer go in one payload however large: past the transport's bound it drops them all",
    file: LINK,
    search: "payloads(batch, this.options.payloadBytesMax ?? PAYLOAD_BYTES_MAX)",
    replace: "[batch]",
  },
  {
    name: "link-takes-gone-replica",
    description:
      "a message for a replica of this node that was removed (an old id) reaches the replica that replaced it",
    file: LINK,
    search: " ||\n          (target.self !== undefined && message.to !== target.self)",
    replace: "",
  },
  {
    name: "rpc-ids-from-one",
    description:
      "a member numbers its peer calls from 1 at every start: an answer to its former self's call is taken for its own",
    file: "src/cluster/replication/peer-rpc.ts",
    search: "  let nextId = 1 + Math.floor((options.random ?? Math.random)() * 2 ** 48);",
    replace: "  let nextId = 1;",
  },
];
