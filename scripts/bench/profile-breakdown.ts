/**
 * Where a server's sampled CPU time went, by stage of the write path, from a Chrome-format CPU
 * profile (`bun --cpu-prof`), counting only the samples taken within a window of wall-clock time
 * (the measured requests: not the start, the warm-up or the checkpoint written at shutdown).
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  /** Unix µs (Bun's profiler stamps wall-clock time). */
  startTime: number;
  samples: number[];
  /** µs from the previous sample (the first: from `startTime`). */
  timeDeltas: number[];
}

/**
 * A stage is recognised by the source file of a frame. Stages that are a context (a checkpoint,
 * a GC slice) claim a sample wherever they are on its stack; the others claim it by the frame
 * nearest to the leaf that names one of their files, so that the store's `apply` called from the
 * WAL writer counts as MVCC apply, and the WAL writer's own code as WAL write.
 */
const CONTEXT_STAGES: readonly (readonly [string, readonly string[]])[] = [
  ["checkpoint (background)", ["/src/storage/checkpoint/"]],
  ["GC slices (background)", ["/src/storage/mvcc/gc.ts"]],
];

const LEAF_STAGES: readonly (readonly [string, readonly string[]])[] = [
  ["WAL record encoding", ["/src/storage/wal/wal-format.ts", "/src/storage/command-format.ts", "/src/io/format/"]],
  ["WAL write and fsync calls", ["/src/storage/wal/", "/src/io/fs/"]],
  ["watch fan-out", ["/src/storage/watch/"]],
  ["MVCC apply", ["/src/storage/mvcc/"]],
  ["validation (limits)", ["/src/server/limits.ts", "/src/server/request-size.ts"]],
  ["protobuf decode and encode", ["/src/gen/", "/@bufbuild/"]],
  ["handler, database, log queue", ["/src/server/", "/src/storage/"]],
  ["HTTP/2 and gRPC framing", ["/src/server/h2/", "/src/h2/"]],
];

export const OTHER_STAGE = "runtime and native only (timers, promises, socket I/O, heap GC)";

function stageOf(stack: readonly ProfileNode[]): string {
  for (const [stage, files] of CONTEXT_STAGES)
    if (stack.some((node) => files.some((file) => node.callFrame.url.includes(file)))) return stage;
  for (const node of stack) {
    // Matched in the order of LEAF_STAGES: a file may fall under a narrower stage listed earlier.
    const stage = LEAF_STAGES.find(([, files]) => files.some((file) => node.callFrame.url.includes(file)));
    if (stage) return stage[0];
  }
  return OTHER_STAGE;
}

export interface ProfileSummary {
  /** Sampled ms per stage of the write path. */
  stages: Map<string, number>;
  /** Sampled ms of self time per function ("name file:line"). */
  functions: Map<string, number>;
}

/**
 * What the samples between `fromUs` and `toUs` (Unix µs) were doing, each sample counted as
 * `intervalUs` (the profiler's `--cpu-prof-interval`): the profiler takes no sample while the
 * thread waits, so the time since the previous sample may be idle time.
 */
export function summarizeProfile(
  path: string,
  window: { fromUs: number; toUs: number; intervalUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  /** Leaf first, up to (not including) the root. */
  const stackOf = (leaf: number): ProfileNode[] => {
    const stack: ProfileNode[] = [];
    for (let id: number | undefined = leaf; id !== undefined && stack.length < 10_000; id = parent.get(id)) {
      if (parent.has(id)) stack.push(byId.get(id)!);
    }
    return stack;
  };
  const stages = new Map<string, number>();
  const functions = new Map<string, number>();
  const stageByLeaf = new Map<number, string>();
  const ms = window.intervalUs / 1000;
  let at = profile.startTime;
  for (const [i, leaf] of profile.samples.entries()) {
    at += profile.timeDeltas[i]!;
    if (at < window.fromUs || at > window.toUs) continue;
    let stage = stageByLeaf.get(leaf);
    if (stage === undefined) {
      stage = stageOf(stackOf(leaf));
      stageByLeaf.set(leaf, stage);
    }
    stages.set(stage, (stages.get(stage) ?? 0) + ms);
    const { functionName, url, lineNumber } = byId.get(leaf)!.callFrame;
    const name = `${functionName || "(anonymous)"} ${url.replace(/^.*\/src\//, "src/") || "native"}${url ? `:${lineNumber + 1}` : ""}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
  }
  return { stages, functions };
}
