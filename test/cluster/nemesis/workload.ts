import { status as Status } from "@grpc/grpc-js";
import { type HomeKvClient, HomeKvRpcError } from "../../../src/client/client.ts";
import { isHomeKvError } from "../../../src/errors.ts";
import { Compare_Op, Compare_Target } from "../../../src/gen/homekv_service.ts";
import { waitFor } from "../../helpers/wait.ts";
import type { Operation } from "../../linearizability/history.ts";
import type { KvInput, KvOutput } from "../../linearizability/kv-model.ts";
import type { Member } from "./cluster.ts";

export type KvOperation = Operation<KvInput, KvOutput>;

/** Keys of the register workload; the insert-only keys live under SET_PREFIX. */
export const registerKey = (i: number) => `k${i}`;
export const SET_PREFIX = "s/";

export interface WorkloadOptions {
  members: readonly Member[];
  clientsPerMember: number;
  /** How many register keys the clients share (fewer: more contention, harder to check). */
  keys: number;
  random: () => number;
  /** performance.now() at which every client stops issuing operations. */
  untilMs: number;
  /**
   * Gets and puts of two register keys at once (in a partitioned cluster, most often in two
   * partitions): a get that saw half of a put would make the history illegal.
   */
  multiKey?: boolean;
}

/** How the calls ended: ok (answered), fail (certainly not applied), info (outcome unknown). */
export interface Counts {
  ok: number;
  fail: number;
  info: number;
}

export interface WorkloadResult {
  /** Every register operation that answered, and every write whose outcome is unknown. */
  history: KvOperation[];
  /** Insert-only keys whose write was acknowledged: no member may lose one. */
  acknowledged: Set<string>;
  /** Insert-only keys whose write has an unknown outcome: a member may hold them or not. */
  uncertain: Set<string>;
  counts: Counts;
  /** Answers no fault explains (INTERNAL, INVALID_ARGUMENT…): each one is a failure of the run. */
  unexpected: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Why a write was refused, when the refusal says it was certainly not applied: a member that is not
 * the leader (or has none) refuses before proposing, and a proposal replaced by another leader's
 * entry is dropped. Every other failure — a deadline, a lost connection, a member shutting down,
 * "outcome unknown" — may hide a write that was applied: the operation stays in the history with an
 * unknown outcome (Jepsen's :info).
 */
function certainlyNotApplied(error: unknown): boolean {
  if (!(error instanceof HomeKvRpcError)) return false;
  // A write across partitions that lost to a transaction holding its keys (ABORTED) applied nothing.
  if (error.code === Status.ABORTED) return /nothing of it was applied/.test(error.details);
  return (
    error.code === Status.UNAVAILABLE &&
    /is not the leader|no leader can take writes|was not applied/.test(error.details)
  );
}

/** Failures a fault explains: the member is down, paused, cut off or has no leader. */
function explainedByFaults(error: unknown): boolean {
  if (isHomeKvError(error, "E_UNREACHABLE")) return true;
  return (
    error instanceof HomeKvRpcError &&
    (error.code === Status.UNAVAILABLE || error.code === Status.DEADLINE_EXCEEDED || error.code === Status.CANCELLED)
  );
}

/**
 * Clients on every member, each issuing one operation at a time until `untilMs`: linearizable gets,
 * puts of values never written before, compare-and-set transactions (on the value the client last
 * read), and puts of fresh insert-only keys. Times are performance.now() of this process: one clock
 * for every client, as the checker needs.
 */
export async function runWorkload(options: WorkloadOptions): Promise<WorkloadResult> {
  const result: WorkloadResult = {
    history: [],
    acknowledged: new Set(),
    uncertain: new Set(),
    counts: { ok: 0, fail: 0, info: 0 },
    unexpected: [],
  };
  const loops = options.members.flatMap((member) =>
    Array.from({ length: options.clientsPerMember }, (_, c) =>
      clientLoop(`${member.name}.${c}`, member, options, result),
    ),
  );
  await Promise.all(loops);
  return result;
}

async function clientLoop(id: string, member: Member, options: WorkloadOptions, result: WorkloadResult) {
  const { random, untilMs } = options;
  const lastSeen = new Map<string, string | null>();
  // Bounded by the deadline; the count bound is a backstop for a clock that would not move.
  for (let n = 0; n < 1_000_000 && performance.now() < untilMs; n++) {
    const client = await connectedClient(member, untilMs);
    if (!client) return;
    const index = Math.floor(random() * options.keys);
    const key = registerKey(index);
    // With multiKey, its pair too (k0 with k1, k2 with k3…): pairs keep the checker's search to two keys at a time.
    const pair = index ^ 1;
    const keys = options.multiKey && pair < options.keys ? [key, registerKey(pair)] : [key];
    const value = `${id}:${n}`;
    const draw = random();
    if (draw < 0.4) {
      await record(result, id, { op: "get", keys }, async () => {
        const values = await readMany(client, keys);
        for (const [i, read] of values.entries()) lastSeen.set(keys[i]!, read);
        return { values };
      });
    } else if (draw < 0.7 || !lastSeen.has(key)) {
      await record(result, id, { op: "put", records: keys.map((k) => ({ key: k, value })) }, async () => {
        await client.set(Object.fromEntries(keys.map((k) => [k, value])));
        return undefined;
      });
    } else if (draw < 0.85) {
      const expected = lastSeen.get(key)!;
      const input: KvInput = {
        op: "txn",
        compares: [{ key, value: expected }],
        success: [{ type: "put", key, value }],
        failure: [],
      };
      await record(result, id, input, async () => ({
        succeeded: await compareAndSet(client, key, expected, value),
        values: [],
      }));
    } else {
      await insertOnce(client, `${SET_PREFIX}${value}`, result);
    }
  }
}

/** The member's client once it runs (it may be down, between a kill and its restart); undefined past the deadline. */
async function connectedClient(member: Member, untilMs: number): Promise<HomeKvClient | undefined> {
  if (member.client) return member.client;
  const remainingMs = untilMs - performance.now();
  if (remainingMs <= 0) return undefined;
  return waitFor(() => member.client ?? (performance.now() >= untilMs ? "past the deadline" : undefined), {
    what: `${member.name} to run again`,
    timeoutMs: remainingMs + 1_000,
    intervalMs: 50,
  }).then((client) => (typeof client === "string" ? undefined : client));
}

/** A key's value as a linearizable get reads it; null for a missing key. */
export async function readOne(client: HomeKvClient, key: string): Promise<string | null> {
  return (await readMany(client, [key]))[0]!;
}

/** Keys' values as one linearizable get reads them; null for a missing key. */
async function readMany(client: HomeKvClient, keys: readonly string[]): Promise<(string | null)[]> {
  const { records } = await client.get(keys);
  return records.map((record) => (record.value === undefined ? null : decoder.decode(record.value)));
}

/** Sets `key` to `value` if it holds `expected` (null: if it is missing); whether it did. */
async function compareAndSet(client: HomeKvClient, key: string, expected: string | null, value: string) {
  const compare =
    expected === null
      ? { key, target: Compare_Target.EXISTS, op: Compare_Op.EQUAL, number: 0 }
      : { key, target: Compare_Target.VALUE, op: Compare_Op.EQUAL, value: encoder.encode(expected) };
  const { succeeded } = await client.txn({
    compares: [compare],
    success: [{ op: { $case: "put", put: { key, value: encoder.encode(value) } } }],
    failure: [],
  });
  return succeeded;
}

/** Runs one register operation and records it as the client saw it. */
async function record(
  result: WorkloadResult,
  client: string,
  input: KvInput,
  call: () => Promise<KvOutput | undefined>,
): Promise<void> {
  const start = performance.now();
  try {
    const output = await call();
    result.history.push({ client, input, output, call: start, ret: performance.now() });
    result.counts.ok++;
  } catch (error) {
    const outcome = classify(error, result);
    // A read that failed changed nothing; a write certainly not applied did not happen.
    if (outcome === "info" && input.op !== "get")
      result.history.push({ client, input, call: start, ret: Number.POSITIVE_INFINITY });
  }
}

async function insertOnce(client: HomeKvClient, key: string, result: WorkloadResult): Promise<void> {
  try {
    await client.set({ [key]: "1" });
    result.acknowledged.add(key);
    result.counts.ok++;
  } catch (error) {
    if (classify(error, result) === "info") result.uncertain.add(key);
  }
}

function classify(error: unknown, result: WorkloadResult): "fail" | "info" {
  if (certainlyNotApplied(error)) {
    result.counts.fail++;
    return "fail";
  }
  if (!explainedByFaults(error)) result.unexpected.push(error instanceof Error ? error.message : String(error));
  result.counts.info++;
  return "info";
}
