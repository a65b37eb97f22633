import { isHomeKvError } from "../errors.ts";
import type { Database } from "./database.ts";

/**
 * Time-based history retention (`serve --history-duration`), like etcd's periodic compactor: once
 * a second it notes which revision was current, and compacts below the newest revision that was
 * current at least `durationMs` ago. Compaction goes through the log as a command, so it is durable
 * and, in a cluster, the same on every replica.
 */
export function startHistoryCompactor(
  db: Database,
  options: { durationMs: number; onError: (error: unknown) => void; now?: () => number },
) {
  const now = options.now ?? (() => Date.now());
  const samples: { atMs: number; revision: number }[] = [];
  let busy = false;
  const tick = () => {
    const atMs = now();
    samples.push({ atMs, revision: db.revision });
    let target = 0;
    while (samples.length > 0 && samples[0]!.atMs <= atMs - options.durationMs) target = samples.shift()!.revision;
    // In a cluster the leader alone decides: every member's samples stay, for whoever leads next.
    if (busy || target <= db.compactedRevision || !db.leads) return;
    busy = true;
    db.compact(target)
      // A leader that lost its role meanwhile is refused: the next leader compacts.
      .catch((error) => isHomeKvError(error, "E_NOT_LEADER") || options.onError(error))
      .finally(() => {
        busy = false;
      });
  };
  // Samples are one a second, and only those younger than the duration are kept: bounded.
  const timer = setInterval(tick, 1_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
