import { type LevelChange, LevelSet } from "../levels/level-set.ts";
import type { WireError } from "../worker-errors.ts";
import type { CompactionJobRequest, CompactionJobResult } from "./run-compaction-job.ts";

/**
 * The messages between the engine and its compaction Worker: plain data only (structured clone),
 * one job at a time.
 *
 *   main → worker   run {request}                       a job, its level set as a change from empty
 *   worker → main   allocate                            a file number for the next output table, please
 *   main → worker   number {number}                     from the manifest
 *   worker → main   done {result} | failed {error}      the job's result; or its error, its tables removed
 */
export type ToWorker =
  | { readonly type: "run"; readonly request: WireRequest }
  | { readonly type: "number"; readonly number: number };

export type FromWorker =
  | { readonly type: "allocate" }
  | { readonly type: "done"; readonly result: CompactionJobResult }
  | { readonly type: "failed"; readonly error: WireError };

/** A request as it crosses: the level set (a class) as the change that builds it from an empty set. */
export interface WireRequest extends Omit<CompactionJobRequest, "levels"> {
  readonly levelCount: number;
  readonly levels: LevelChange;
}

export function toWire(request: CompactionJobRequest): WireRequest {
  const { levels } = request;
  const guardsAdded: LevelChange["guardsAdded"][number][] = [];
  const added: LevelChange["added"][number][] = [];
  for (let level = 0; level < levels.levelCount; level++)
    for (const { key, tables } of levels.guards(level)) {
      if (key !== null) guardsAdded.push({ level, key });
      for (const table of tables) added.push({ level, guard: key, table });
    }
  return { ...request, levelCount: levels.levelCount, levels: { removed: [], guardsAdded, added } };
}

export function fromWire(request: WireRequest): CompactionJobRequest {
  return { ...request, levels: LevelSet.empty(request.levelCount).apply(request.levels) };
}
