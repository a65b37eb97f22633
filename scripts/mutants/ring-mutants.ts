import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in partition placement and replica moves (src/cluster/ring), one at a time
 * (`npm run mutants -- --set ring`), each judged by test/cluster/ring: its property tests first
 * among them. Same rules as raft-mutants.ts: `search` occurs exactly once in `file`.
 */
const PLACEMENT = "src/cluster/ring/placement.ts";
const MOVE = "src/cluster/ring/replica-move.ts";
const HEAP = "src/cluster/ring/min-heap.ts";

export const RING_MUTANTS: readonly Mutant[] = [
  {
    name: "placement-never-sheds",
    description: "a node over its share keeps every replica, so a joining node gets none",
    file: PLACEMENT,
    search: "      if (surplus <= 0) continue;",
    replace: "      if (surplus <= 0 || surplus > 0) continue;",
  },
  {
    name: "placement-larger-shares-unbounded",
    description: "a node above the base share keeps one replica more without using up a larger share",
    file: PLACEMENT,
    search: "      if (keepsLarger) this.largerLeft -= 1;",
    replace: "",
  },
  {
    name: "placement-leaders-unbalanced",
    description: "leaderships stay where the replicas' order put them",
    file: PLACEMENT,
    search: "      if (chain === undefined) return;",
    replace: "      if (chain === undefined || shifts >= 0) return;",
  },
  {
    name: "placement-sheds-leaderships-first",
    description: "a full node gives up the partitions it leads before the others",
    file: PLACEMENT,
    search: "            Number(a.held[0] === node) - Number(b.held[0] === node) ||",
    replace: "            Number(b.held[0] === node) - Number(a.held[0] === node) ||",
  },
  {
    name: "placement-fill-misses-full-holders",
    description: "a partition whose holder ran out of room keeps its old place in the fill queues",
    file: PLACEMENT,
    search: "          enqueue(q);",
    replace: "",
  },
  {
    name: "placement-fill-most-choices-first",
    description: "the hole with the most nodes to choose from is filled first",
    file: PLACEMENT,
    search: "      for (let count = Math.min(this.width, roomy.size) - 1; count >= 0 && partition < 0; count -= 1)",
    replace: "      for (let count = 0; count < Math.min(this.width, roomy.size) && partition < 0; count += 1)",
  },
  {
    name: "heap-pops-left-child",
    description: "a pop moves the left child up though the right one is smaller",
    file: HEAP,
    search: "right < items.length && (items[right] as number) < (items[left] as number) ? right : left",
    replace: "left",
  },
  {
    name: "move-promotes-lagging-learner",
    description: "a learner becomes a voter before its log has caught up",
    file: MOVE,
    search: "    if (!caughtUp(learner) || matchOf(learner) < (group.confIndex ?? 0))",
    replace: "    if (caughtUp(learner) && !caughtUp(learner))",
  },
  {
    name: "move-removes-leader",
    description: "the leader removes itself instead of handing leadership over first",
    file: MOVE,
    search: "  const others = leaving.filter((node) => node !== leader);",
    replace: "  const others = leaving;",
  },
  {
    name: "move-removal-without-majority",
    description: "a voter is removed though the voters that stay have no caught-up majority",
    file: MOVE,
    search: "  if (staying.filter(caughtUp).length * 2 <= staying.length)",
    replace: "  if (staying.filter(caughtUp).length * 2 < 0)",
  },
  {
    name: "move-removes-before-adding",
    description: "a leaving voter is removed before the target's new node has joined",
    file: MOVE,
    search: "  const missing = target.find((node) => !isMember(conf, node));",
    replace:
      "  const missing = conf.voters.some((node) => !wanted.has(node) && node !== leader) ? undefined : target.find((node) => !isMember(conf, node));",
  },
  {
    name: "move-trusts-match",
    description: "a member that is down but was caught up when it stopped counts as caught up",
    file: MOVE,
    search: "  const caughtUp = (node: NodeId) => isUp(node) && matchOf(node)",
    replace: "  const caughtUp = (node: NodeId) => matchOf(node)",
  },
  {
    name: "move-removes-live-voter-first",
    description: "of the leaving voters, the least caught up goes first even when another is down",
    file: MOVE,
    search: "Number(isUp(a)) - Number(isUp(b)) || ",
    replace: "",
  },
  {
    name: "move-leaves-stray-learner",
    description: "a learner the target no longer wants stays in the group",
    file: MOVE,
    search: '  if (stray !== undefined) return change("remove", stray);\n',
    replace: "",
  },
  {
    name: "move-promotes-before-its-addition",
    description: "a learner within the catch-up bound of a short log is promoted before its log holds its own addition",
    file: MOVE,
    search: "    if (!caughtUp(learner) || matchOf(learner) < (group.confIndex ?? 0))",
    replace: "    if (!caughtUp(learner))",
  },
];
