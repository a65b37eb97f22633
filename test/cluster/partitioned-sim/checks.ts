import type { PartitionGroup } from "../../../src/cluster/txn/partition-group.ts";
import { checkLinearizability } from "../../linearizability/checker.ts";
import { kvModel } from "../../linearizability/kv-model.ts";
import type { PartitionedSimulation } from "./partitioned-sim.ts";

/** Budget of the linearizability search per run. */
const CHECK_BUDGET_MS = 10_000;
/** Keys a store's dump reads at a time. */
const DUMP_KEYS = 1_000;

/**
 * What a settled run must show beyond "no violation while running" (every bank read, the final ones
 * through every node included, added up):
 * 1. every partition's replicas hold the same store: its revision, its compacted revision and every
 *    version of every key (state machine safety across crashes, torn logs, snapshots and moves);
 * 2. the single-key history is linearizable (test/linearizability, key by key).
 */
export function checkSettled(sim: PartitionedSimulation): { operations: number; versions: number } {
  let versions = 0;
  for (let partition = 0; partition < sim.settings.partitions; partition++) {
    const replicas = sim.nodes.flatMap((node) => {
      const group = node.process?.member?.replicas.groups.get(partition);
      return group ? [{ node: node.name, group }] : [];
    });
    const [reference, ...others] = replicas.map(({ node, group }) => ({ node, dump: dump(group) }));
    if (reference === undefined) throw new Error(`partition ${partition} has no replica`);
    versions += reference.dump.versions;
    for (const other of others)
      if (other.dump.text !== reference.dump.text)
        throw new Error(
          `partition ${partition}: ${other.node} holds ${other.dump.text.slice(0, 2_000)}\nbut ${reference.node} ${reference.dump.text.slice(0, 2_000)}`,
        );
  }
  const verdict = checkLinearizability(sim.clients.history, kvModel, { timeoutMs: CHECK_BUDGET_MS });
  if (verdict.result !== "ok") throw new Error(`history not linearizable (${verdict.result}): ${verdict.explanation}`);
  return { operations: sim.clients.history.length, versions };
}

/** A partition replica's store as text: its revisions and every version of every key. */
function dump(group: PartitionGroup): { text: string; versions: number } {
  const { store } = group;
  const lines = [`revision ${store.revision}, compacted ${store.compactedRevision}`];
  let versions = 0;
  let after: string | undefined;
  for (let page = 0; page < 1_000; page++) {
    const chains = store.dumpChains({ after, limit: DUMP_KEYS, revision: store.revision });
    if (chains.length === 0) break;
    for (const { key, versions: chain } of chains) {
      versions += chain.length;
      const text = chain.map((v) =>
        v.value === null
          ? `${v.revision}:-`
          : `${v.revision}:${new TextDecoder().decode(v.value)}/${v.createRevision}/${v.version}`,
      );
      lines.push(`${key} ${text.join(" ")}`);
    }
    after = chains.at(-1)!.key;
  }
  return { text: lines.join("\n"), versions };
}
