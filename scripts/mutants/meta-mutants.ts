import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in the meta group (src/cluster/meta): its state, its timestamp oracle and the
 * group that runs them, one at a time (`npm run mutants -- --set meta`), judged by
 * test/cluster/meta. Same rules as raft-mutants.ts: `search` occurs exactly once in `file`.
 */
const ORACLE = "src/cluster/meta/timestamp-oracle.ts";
const STATE = "src/cluster/meta/meta-state.ts";
const GROUP = "src/cluster/meta/meta-group.ts";
const NODE_CHANGES = "src/cluster/meta/node-changes.ts";

export const META_MUTANTS: readonly Mutant[] = [
  {
    name: "oracle-restarts-below-limit",
    description: "a new leader starts just below the reserved limit: it hands out timestamps its predecessor may have",
    file: ORACLE,
    search: "    this.next = reservedLimit + 1;",
    replace: "    this.next = Math.max(1, reservedLimit - 5);",
  },
  {
    name: "oracle-takes-past-reservation",
    description: "a batch is handed out when only its first timestamp is reserved",
    file: ORACLE,
    search: "this.next + count - 1 > this.limit",
    replace: "this.next > this.limit",
  },
  {
    name: "reserved-limit-shrinks",
    description: "an older, smaller reservation applied late lowers the group's reserved limit",
    file: STATE,
    search: "        this.timestampLimit = Math.max(this.timestampLimit, command.through);",
    replace: "        this.timestampLimit = command.through;",
  },
  {
    name: "placement-from-stale-version",
    description: "a placement made from an older one is applied, undoing the change in between",
    file: STATE,
    search: "        if (command.basedOn !== this.placementVersion)",
    replace: "        if (command.basedOn > this.placementVersion)",
  },
  {
    name: "placement-on-unknown-node",
    description: "a placement naming a node that is not the cluster's is applied",
    file: STATE,
    search: "      if (stranger !== undefined) return",
    replace: "      if (stranger === '') return",
  },
  {
    name: "timestamps-unconfirmed",
    description: "a batch of timestamps is returned without the ReadIndex round that confirms the leadership",
    file: GROUP,
    search: "        await this.driver.readBarrier(this.options.confirmTimeoutMs);\n",
    replace: "",
  },
  {
    name: "office-before-first-entry",
    description:
      "a new leader hands out timestamps before applying its first entry: it may not hold the last reservation",
    file: GROUP,
    search: 'raft.role === "leader" && entry.term === raft.term;',
    replace: 'raft.role === "leader";',
  },
  {
    name: "oracle-ignores-large-batch",
    description: "a batch larger than what is left, but less than half a window short, waits forever for a reservation",
    file: ORACLE,
    search: " && left >= this.wantedBatch)",
    replace: ")",
  },
  {
    name: "client-runs-overlap",
    description: "the requests of one turn get overlapping runs of the batch",
    file: "src/cluster/meta/timestamp-rpc.ts",
    search: "          next += waiter.count;",
    replace: "          next += 1;",
  },
  {
    name: "restart-ignores-snapshot",
    description: "a replica restarted on a compacted log begins from an empty state instead of the snapshot's",
    file: GROUP,
    search: "    if (snapshot.index > 0) this.state = decodeMetaState(snapshot.data);\n",
    replace: "",
  },
  {
    name: "placed-before-founded",
    description:
      "the leader places partitions as soon as one founding node is recorded, so replicas are made only to move",
    file: GROUP,
    search: "    if (this.placing || this.founding() || !this.confirmOffice(this.leadingTerm)) return;",
    replace: "    if (this.placing || !this.confirmOffice(this.leadingTerm)) return;",
  },
  {
    name: "founding-nodes-lost-with-leader",
    description: "a leader that finds the cluster created puts none of the founding nodes its predecessor did not",
    file: GROUP,
    search: "    const missing = nodes.filter((node) => !this.state.nodes.has(node.name));",
    replace: "    const missing = this.state.shape ? [] : nodes;",
  },
  {
    name: "removed-name-put-again",
    description:
      "a removed node's name is put again while a group still counts it: the new node meets its former self's votes",
    file: NODE_CHANGES,
    search: '  if (change.type === "putNode" && meta.state.removed.has(change.node.name)) {',
    replace: '  if (change.type === "putNode" && meta.state.nodes.has(change.node.name)) {',
  },
  {
    name: "node-put-at-another-address",
    description: "a node of the cluster is put again at another address: a second server with its name takes its place",
    file: NODE_CHANGES,
    search: "    if (known)\n      return {",
    replace: "    if (known && known.name === '')\n      return {",
  },
];
