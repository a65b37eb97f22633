import { describe, expect, test } from "bun:test";
import { mulberry32 } from "../../src/random.ts";
import { checkLinearizability } from "./checker.ts";
import { planClients, recordRun } from "./generate.ts";
import { type History, isUnknown } from "./history.ts";
import { type KvInput, type KvOutput, kvModel } from "./kv-model.ts";

/** Generous for 2 slow shared cores; the figures measured are printed. */
const BUDGET_MS = 10_000;
const TEST_TIMEOUT_MS = 3 * BUDGET_MS;

/** Gets, puts and deletes, 50/40/10, of fresh values, on one of `keys` keys. */
const kvInput =
  (keys: number) =>
  (random: () => number): KvInput => {
    const key = `k${Math.floor(random() * keys)}`;
    const roll = random();
    if (roll < 0.5) return { op: "get", keys: [key] };
    if (roll < 0.9) return { op: "put", records: [{ key, value: `v${Math.floor(random() * 1e9)}` }] };
    return { op: "delete", keys: [key] };
  };

function measured(name: string, history: History<KvInput, KvOutput>) {
  const verdict = checkLinearizability(history, kvModel, { timeoutMs: BUDGET_MS });
  console.log(
    `${name}: ${verdict.result} in ${verdict.elapsedMs.toFixed(0)} ms ` +
      `(${history.length} operations, ${verdict.partitions} partitions, ${verdict.configurations} configurations)`,
  );
  return verdict;
}

/** A recorded run of 1% unknown outcomes, operations lasting 1 to 40 time units. */
const clientsRun = (seed: number, clients: number, operations: number, keys: number) =>
  recordRun(
    kvModel,
    planClients({
      clients,
      operations,
      input: kvInput(keys),
      durationMax: 40,
      unknownRate: 0.01,
      random: mulberry32(seed),
    }),
  );

describe("checker performance", () => {
  test(
    "20,000 operations over 100 keys from 20 clients",
    () => {
      const history = clientsRun(14, 20, 20_000, 100);
      expect(measured("20k ops, 100 keys", history).result).toBe("ok");
      // One get forged in the middle: found, with its key named.
      const victim = history.findIndex((op, i) => i > 10_000 && op.input.op === "get" && !isUnknown(op));
      const forged = history.map((op, i) => (i === victim ? { ...op, output: { values: ["forged"] } } : op));
      const verdict = measured("20k ops, 100 keys, one get forged", forged);
      expect(verdict).toMatchObject({
        result: "illegal",
        partition: `key "${(history[victim]!.input as { keys: string[] }).keys[0]}"`,
      });
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "2,000 operations on one key from 8 clients, each always in flight",
    () => {
      // The search is exponential in how many operations on one key overlap: here 8 at every
      // instant. With 10 it took up to ~12 s on some seeds; with 20, no verdict in 20 s.
      const history = clientsRun(15, 8, 2_000, 1);
      expect(measured("2k ops, 1 key, 8 clients", history).result).toBe("ok");
    },
    TEST_TIMEOUT_MS,
  );
});
