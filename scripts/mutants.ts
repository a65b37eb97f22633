#!/usr/bin/env bun
/**
 * Mutation testing: plants each known bug of a set, one at a time, in a copy of the project, and
 * runs that set's tests there — the Raft core's (scripts/mutants/raft-mutants.ts, judged by
 * test/cluster/raft) and the replication layer's (scripts/mutants/replication-mutants.ts, judged by
 * test/cluster/replication, the server simulation among them). A mutant is caught when a test
 * fails (or the run exceeds its time bound); one that passes every test SURVIVED, and the exit
 * status is then 1. The unmutated copy runs first: the tests must pass before they can judge.
 *
 * The cluster set plants bugs of the replicated server (scripts/mutants/cluster-mutants.ts), judged
 * by the real-process fault tests of test/cluster/nemesis; the storage set plants bugs of the
 * in-memory MVCC store's chains and GC and of the Raft log engine many groups share
 * (scripts/mutants/storage-mutants.ts), judged by test/storage and the Raft logs' tests; the
 * flsm set bugs of the FLSM engine (scripts/mutants/flsm-mutants.ts), judged by test/storage/flsm;
 * the ring set plants bugs of partition placement and replica moves (scripts/mutants/ring-mutants.ts),
 * judged by test/cluster/ring; the meta set bugs of the meta group's state, timestamp oracle and
 * running group (scripts/mutants/meta-mutants.ts), judged by test/cluster/meta; the txn set bugs of
 * Percolator's locks and decisions (scripts/mutants/txn-mutants.ts), judged by test/cluster/txn; the
 * moves set bugs of a partitioned node's replicas following the placement
 * (scripts/mutants/moves-mutants.ts), judged by test/node/partition-replicas and the real-process
 * test of a join and a removal; the psim set bugs of a partitioned node as a whole
 * (scripts/mutants/psim-mutants.ts), judged by the partitioned simulation (test/cluster/partitioned-sim).
 *
 *   npm run mutants                         every mutant of every set
 *   npm run mutants -- --set replication    one set
 *   npm run mutants -- figure-8 double-vote  only these
 *   MUTANT_SECONDS=300 npm run mutants      the time bound per run (default 180 s)
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { BACKUP_MUTANTS } from "./mutants/backup-mutants.ts";
import { CHECKPOINT_CALL_MUTANTS } from "./mutants/checkpoint-call-mutants.ts";
import { CLUSTER_MUTANTS } from "./mutants/cluster-mutants.ts";
import { FLSM_MUTANTS } from "./mutants/flsm-mutants.ts";
import { META_MUTANTS } from "./mutants/meta-mutants.ts";
import { MOVES_MUTANTS } from "./mutants/moves-mutants.ts";
import { PSIM_MUTANTS } from "./mutants/psim-mutants.ts";
import { type Mutant, RAFT_MUTANTS } from "./mutants/raft-mutants.ts";
import { REPLICATION_MUTANTS } from "./mutants/replication-mutants.ts";
import { RING_MUTANTS } from "./mutants/ring-mutants.ts";
import { plant, Sandbox } from "./mutants/sandbox.ts";
import { STORAGE_MUTANTS } from "./mutants/storage-mutants.ts";
import { runTests, type TestOutcome } from "./mutants/test-run.ts";
import { TXN_MUTANTS } from "./mutants/txn-mutants.ts";

const ROOT = resolve(import.meta.dir, "..");
const LIMIT_SECONDS = Number(process.env.MUTANT_SECONDS ?? 180);

interface MutantSet {
  name: string;
  mutants: readonly Mutant[];
  tests: readonly string[];
}

const SETS: readonly MutantSet[] = [
  { name: "raft", mutants: RAFT_MUTANTS, tests: ["test/cluster/raft"] },
  { name: "replication", mutants: REPLICATION_MUTANTS, tests: ["test/cluster/replication"] },
  { name: "cluster", mutants: CLUSTER_MUTANTS, tests: ["test/cluster/nemesis"] },
  { name: "ring", mutants: RING_MUTANTS, tests: ["test/cluster/ring"] },
  { name: "meta", mutants: META_MUTANTS, tests: ["test/cluster/meta"] },
  {
    name: "moves",
    mutants: MOVES_MUTANTS,
    tests: ["test/node/partition-replicas", "test/cluster/partition-moves", "test/cluster/partition-move-restart"],
  },
  // The Checkpoint call's options, from the CLI to the replicas: members left without a quorum.
  {
    name: "checkpoint-call",
    mutants: CHECKPOINT_CALL_MUTANTS,
    tests: ["test/cluster/replicated-serve", "test/cluster/partition-checkpoints"],
  },
  // A replicated or partitioned cluster's backup, its restore as a new cluster, and what a cluster node refuses to start on.
  {
    name: "backup",
    mutants: BACKUP_MUTANTS,
    tests: [
      "test/cluster/replication/member-backup",
      "test/node/partitioned-database",
      "test/node/data-dir-kind",
      "test/cluster/replication/restore-member",
      "test/cluster/cluster-backup",
    ],
  },
  // The partitioned simulation alone judges these: the whole cluster, faults and membership included.
  { name: "psim", mutants: PSIM_MUTANTS, tests: ["test/cluster/partitioned-sim"] },
  {
    name: "txn",
    mutants: TXN_MUTANTS,
    tests: [
      "test/cluster/txn",
      "test/node/partitioned-database",
      "test/cluster/review/pipeline-leader-change",
      "test/cluster/review/del-retry",
      "test/cluster/review19c/compact-pipeline",
      "test/cluster/review19c/compact-conflict",
    ],
  },
  // The FLSM engine's own tests: the model tests against the memory engine, crashes, tables, stalls.
  { name: "flsm", mutants: FLSM_MUTANTS, tests: ["test/storage/flsm"] },
  {
    name: "storage",
    mutants: STORAGE_MUTANTS,
    // The memory engine's tests and the conformance suite (the FLSM engine's own are not its judges).
    tests: [
      "test/storage/mvcc-store",
      "test/storage/gapped-revisions",
      "test/storage/late-commits",
      "test/storage/long-history",
      "test/storage/version-chain",
      "test/storage/packed-layout",
      "test/storage/sorted-leaves",
      "test/storage/snapshots",
      "test/storage/checkpoint",
      "test/storage/conformance",
      "test/storage/wal",
      // The Raft logs on disk: the contract tests of both, the group log engine's own.
      "test/cluster/raft/durable-log",
      "test/cluster/raft/group-log",
    ],
  },
];

/** The sets to run, each with only the mutants asked for (all of them when none is named). */
function selected(args: readonly string[]): MutantSet[] {
  const at = args.indexOf("--set");
  const setName = at === -1 ? undefined : args[at + 1];
  // Without --set (at = -1), every argument is a mutant's name: at + 1 = 0 must not drop the first.
  const names = at === -1 ? [...args] : args.filter((_, i) => i !== at && i !== at + 1);
  const sets = SETS.filter((set) => setName === undefined || set.name === setName);
  if (sets.length === 0) throw new Error(`no mutant set named ${setName} (${SETS.map((s) => s.name).join(", ")})`);
  const all = sets.flatMap((set) => set.mutants);
  const unknown = names.filter((name) => !all.some((m) => m.name === name));
  if (unknown.length > 0) throw new Error(`no mutant named ${unknown.join(", ")}`);
  return sets
    .map((set) => ({
      ...set,
      mutants: names.length === 0 ? set.mutants : set.mutants.filter((m) => names.includes(m.name)),
    }))
    .filter((set) => set.mutants.length > 0);
}

/** Every mutant must apply to the code as it is now, before an hour is spent running any. */
function checkApplies(mutants: readonly Mutant[]): void {
  for (const mutant of mutants) plant(readFileSync(resolve(ROOT, mutant.file), "utf8"), mutant);
}

function verdict(outcome: TestOutcome): { result: string; by: string } {
  switch (outcome.kind) {
    case "passed":
      return { result: "SURVIVED", by: "" };
    case "failed":
      return { result: "caught", by: outcome.error ? `${outcome.test} (${outcome.error})` : outcome.test };
    case "timedOut":
      return { result: "caught", by: `time bound of ${LIMIT_SECONDS} s exceeded` };
    case "broken":
      return { result: "BROKEN", by: "no test failed, yet the run did (the mutant does not load?)" };
  }
}

async function main(): Promise<number> {
  const sets = selected(process.argv.slice(2));
  checkApplies(sets.flatMap((set) => set.mutants));
  const started = performance.now();
  const sandbox = new Sandbox(ROOT);
  try {
    const rows: string[][] = [];
    let bad = 0;
    let count = 0;
    for (const set of sets) {
      const baseline = await runTests(sandbox.dir, set.tests, LIMIT_SECONDS);
      if (baseline.kind !== "passed") {
        if (baseline.kind === "timedOut")
          console.error(
            `the unmutated ${set.name} tests did not finish within ${LIMIT_SECONDS} s: raise MUTANT_SECONDS`,
          );
        else console.error(`the unmutated ${set.name} tests do not pass: fix them first`);
        if (baseline.kind === "broken") console.error(baseline.output);
        else if (baseline.kind === "failed") console.error(`${baseline.test}: ${baseline.error}`);
        return 2;
      }
      console.log(`unmutated: the ${set.name} tests pass in ${baseline.seconds.toFixed(1)} s`);
      for (const mutant of set.mutants) {
        const outcome = await sandbox.with(mutant, () => runTests(sandbox.dir, set.tests, LIMIT_SECONDS));
        const { result, by } = verdict(outcome);
        count++;
        if (result !== "caught") bad++;
        rows.push([mutant.name, result, outcome.seconds.toFixed(1), by]);
        console.log(`${result.padEnd(8)} ${mutant.name}: ${mutant.description}${by ? ` — ${by}` : ""}`);
      }
    }
    console.log();
    printTable(["mutant", "result", "s", "caught by"], rows);
    const minutes = (performance.now() - started) / 60_000;
    console.log(`\n${count - bad} of ${count} mutants caught, ${bad} not; ${minutes.toFixed(1)} min in all`);
    return bad === 0 ? 0 : 1;
  } finally {
    sandbox.remove();
  }
}

function printTable(header: readonly string[], rows: readonly string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) console.log(line(row));
}

process.exit(await main());
