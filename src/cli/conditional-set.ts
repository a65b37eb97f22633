import type { HomeKvClient, WriteOptions } from "../client/client.ts";
import { HomeKvError } from "../errors.ts";
import { Compare_Op, Compare_Target } from "../gen/homekv_service.ts";

/**
 * `homekv set --if-revision N` and `--if-absent`: compare-and-set as one transaction. Every key must
 * still be at mod revision N (or not exist); otherwise nothing is written and the current state is
 * reported.
 */
export async function conditionalSet(
  client: HomeKvClient,
  pairs: [string, string][],
  condition: { ifRevision?: number; ifAbsent?: boolean },
  options: WriteOptions = {},
): Promise<{ revision: number }> {
  const encoder = new TextEncoder();
  const compares = pairs.map(([key]) =>
    condition.ifAbsent
      ? { key, target: Compare_Target.EXISTS, op: Compare_Op.EQUAL, number: 0 }
      : { key, target: Compare_Target.MOD_REVISION, op: Compare_Op.EQUAL, number: condition.ifRevision! },
  );
  const result = await client.txn(
    {
      compares,
      success: pairs.map(([key, value]) => ({
        op: { $case: "put" as const, put: { key, value: encoder.encode(value) } },
      })),
      failure: pairs.map(([key]) => ({ op: { $case: "get" as const, get: key } })),
    },
    options,
  );
  if (result.succeeded) return { revision: result.revision };
  const now = result.records
    .map((r) => `${r.key} ${r.value === undefined ? "does not exist" : `is at revision ${r.modRevision}`}`)
    .join(", ");
  const wanted = condition.ifAbsent ? "to be absent" : `to be at revision ${condition.ifRevision}`;
  throw new HomeKvError("E_INVALID", `not written: expected every key ${wanted}, but ${now}`);
}
