import { afterEach, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeEntryCommand, encodeEntryCommand } from "../../../src/cluster/replication/entry-command.ts";
import type { Database } from "../../../src/storage/database.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import type { ApplyResult, Command, Compare, TxnOp, WriteOp } from "../../../src/storage/ops.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type LocalGroup, startReplicatedLocalGroup } from "./local-group.ts";

/**
 * A command and its encoding must mean the same: a single server applies the command object and
 * replays the encoding after a restart, and a leader that ever applied what it proposed (as it once
 * did) would part from the members that decode its entry.
 */
const groups: { group: LocalGroup<ApplyResult | undefined>; databases: Map<number, Database> }[] = [];
afterEach(async () => {
  for (const { group, databases } of groups.splice(0)) {
    for (const db of databases.values()) await db.close();
    group.stop();
  }
});

test("a command the leader proposed is applied there as every follower applies its entry", async () => {
  const replicated = await startReplicatedLocalGroup({ historyRevisions: Number.POSITIVE_INFINITY });
  groups.push(replicated);
  const { group, databases } = replicated;
  const leader = await group.leader();
  // An `exists` compare with no number: the type allows it, and the store reads it as "exists".
  const result = await databases.get(leader.id)!.txn({
    compares: [{ key: "missing", target: "exists", op: "==" }],
    success: [{ key: "branch", value: bytes("success") }],
    failure: [{ key: "branch", value: bytes("failure") }],
  });
  expect(result.succeeded).toBe(false);
  await waitFor(() => [...databases.values()].every((db) => db.revision === result.revision), {
    what: `every member at revision ${result.revision}`,
    detail: () => [...databases].map(([id, db]) => `${id}: ${db.revision}`).join(", "),
  });
  const branches = [...databases].map(([id, db]) => [id, text(db.read(["branch"]).records[0]!.value)]);
  expect(branches).toEqual([...databases.keys()].map((id) => [id, "failure"]));
});

// A few keys, so that commands meet on them; well-formed text only, as gRPC decodes every key.
const keyArb = fc.constantFrom("a", "b", "é", "\u{1f600}");
const valueArb = fc.uint8Array({ maxLength: 3 });
const numberArb = fc.option(fc.nat({ max: 4 }), { nil: undefined });
const writeArb: fc.Arbitrary<WriteOp> = fc.record(
  { key: keyArb, value: fc.option(valueArb, { nil: null }), expiresAtMs: fc.nat({ max: 5_000 }) },
  { requiredKeys: ["key", "value"] },
);
const compareArb: fc.Arbitrary<Compare> = fc.record(
  {
    key: keyArb,
    target: fc.constantFrom("value", "mod_revision", "create_revision", "version", "exists"),
    op: fc.constantFrom("==", "!=", "<", ">"),
    value: valueArb,
    number: numberArb,
  },
  { requiredKeys: ["key", "target", "op"] },
);
const distinctWrites = fc.uniqueArray(writeArb, { maxLength: 3, selector: (op) => op.key });
const txnOpsArb: fc.Arbitrary<TxnOp[]> = fc
  .tuple(
    distinctWrites,
    fc.array(
      keyArb.map((get) => ({ get })),
      { maxLength: 2 },
    ),
  )
  .map(([writes, gets]) => [...gets, ...writes]);
/** Every command the type allows, optional fields present or left out. */
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  distinctWrites.map((ops) => ({ ops })),
  distinctWrites.map((ops) => ({ kind: "batch" as const, ops })),
  fc
    .record({ compares: fc.array(compareArb, { maxLength: 3 }), success: txnOpsArb, failure: txnOpsArb })
    .map((txn) => ({
      kind: "txn" as const,
      txn,
    })),
  fc.nat({ max: 8 }).map((compactTo) => ({ kind: "compact" as const, compactTo })),
  fc
    .array(fc.record({ key: keyArb, revision: fc.nat({ max: 8 }) }), { maxLength: 2 })
    .map((keys) => ({ kind: "expire" as const, keys })),
);

/** A store that records what it reports (watch events, TTLs) beside what it holds. */
function recordingStore() {
  const reports: unknown[] = [];
  const store = createMvccStore({
    onEvents: (revision, events) => reports.push({ revision, events }),
    onExpiry: (key, revision, expiresAtMs) => reports.push({ key, revision, expiresAtMs }),
  });
  return { store, reports };
}

test("any command applies as its entry's bytes do (what the leader holds for an entry is the entry)", () => {
  fc.assert(
    fc.property(fc.array(commandArb, { minLength: 1, maxLength: 8 }), (commands) => {
      const [held, decoded] = [recordingStore(), recordingStore()];
      for (const command of commands) {
        const entry = { origin: 0, seq: 0, requestId: "", command };
        const fromBytes = decodeEntryCommand(encodeEntryCommand(entry)).command;
        expect(decoded.store.apply({ ...fromBytes, revision: decoded.store.revision + 1 })).toEqual(
          held.store.apply({ ...command, revision: held.store.revision + 1 }),
        );
      }
      expect(decoded.reports).toEqual(held.reports);
      const keys = ["a", "b", "é", "\u{1f600}"];
      for (let revision = decoded.store.compactedRevision; revision <= decoded.store.revision; revision++)
        expect(decoded.store.readRecords(keys, revision)).toEqual(held.store.readRecords(keys, revision));
    }),
    { numRuns: 2_000 },
  );
});
