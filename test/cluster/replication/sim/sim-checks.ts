import type { Database } from "../../../../src/storage/database.ts";
import { checkLinearizability } from "../../../linearizability/checker.ts";
import { type KvState, keysOf, kvModel } from "../../../linearizability/kv-model.ts";
import type { ServerSimulation } from "./server-sim.ts";

/** Budget of the linearizability search per run. */
const CHECK_BUDGET_MS = 10_000;

const decoder = new TextDecoder();

/** The keys at one revision, as the replicated store holds them. */
function stateAt(db: Database, keys: readonly string[], revision: number): KvState {
  const state = new Map<string, string>();
  for (const record of db.read(keys, revision).records)
    if (record.value !== undefined) state.set(record.key, decoder.decode(record.value));
  return state;
}

const describe = (state: KvState) => kvModel.describeState(state);

/**
 * What a converged run must show, beyond "no violation while running":
 * 1. every member holds the same store: the same keys at every revision (state machine safety, also
 *    across crashes, torn logs and replays);
 * 2. the history of writes and linearizable reads is linearizable (test/linearizability);
 * 3. every write answered is at the revision its answer names: applying it to the state just
 *    before gives the state there and the answer the client got (a write answered before it was
 *    applied, or answered with another write's outcome, fails here);
 * 4. every serializable read saw the state of the revision it names. Serializable reads are not in
 *    the linearizability check: they may be stale by design (etcd's serializable). What they
 *    promise is checked instead: a state the store really had (here), and never older than a
 *    write the same process answered before the read (checked as the read is answered).
 */
export function checkConverged(sim: ServerSimulation): { operations: number; revision: number } {
  const dbs = sim.members.map((m) => m.process!.db!);
  const reference = dbs[0]!;
  const revision = reference.revision;
  const keys = [...new Set(sim.history.flatMap((op) => keysOf(op.input)))];
  for (const [i, db] of dbs.entries()) {
    if (db.revision !== revision)
      throw new Error(`${sim.members[i]!.name} is at revision ${db.revision}, ${sim.members[0]!.name} at ${revision}`);
  }
  for (let r = 1; r <= revision; r++) {
    const expected = describe(stateAt(reference, keys, r));
    for (const [i, db] of dbs.entries()) {
      const seen = describe(stateAt(db, keys, r));
      if (seen !== expected)
        throw new Error(
          `at revision ${r}, ${sim.members[i]!.name} holds ${seen} but ${sim.members[0]!.name} ${expected}`,
        );
    }
  }
  const verdict = checkLinearizability(sim.history, kvModel, { timeoutMs: CHECK_BUDGET_MS });
  if (verdict.result !== "ok") throw new Error(`history not linearizable (${verdict.result}): ${verdict.explanation}`);
  for (const { input, answer } of sim.ackedWrites) {
    const before = stateAt(reference, keys, answer.revision - 1);
    const applied = kvModel.apply(before, input);
    const after = stateAt(reference, keys, answer.revision);
    const sameOutput = kvModel.step(before, input, answer.output).ok;
    if (!kvModel.equal(applied.state, after) || !sameOutput)
      throw new Error(
        `${kvModel.describeOperation(input, answer.output)} was answered at revision ${answer.revision}${answer.duplicate ? " (a repeat)" : ""}, ` +
          `but from ${describe(before)} there it gives ${describe(applied.state)} and ${JSON.stringify(applied.output)}, and the store holds ${describe(after)}`,
      );
  }
  for (const read of sim.serializableReads) {
    const state = stateAt(reference, keys, read.revision);
    if (!kvModel.step(state, read.input, read.output).ok)
      throw new Error(
        `serializable ${kvModel.describeOperation(read.input, read.output)} at revision ${read.revision}, where the store holds ${describe(state)}`,
      );
  }
  return { operations: sim.history.length + sim.serializableReads.length, revision };
}
