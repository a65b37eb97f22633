#!/usr/bin/env bun
/**
 * Compiles the whole program, with the Bun runtime, into one self-contained executable:
 * dist/homekv. It runs with no node_modules and no .proto on disk: the codecs, and the descriptor set
 * health and reflection are built from, are generated code (src/gen).
 * `bun scripts/build.ts [OUTFILE]`.
 */
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");

/**
 * The Worker entry points, each bundled as an entry of its own: `bun build --compile` does not
 * follow `new Worker(...)`. With `--entry-naming [name].[ext]` each sits at the root of the
 * binary's file system under its bare name, beside the program, whose URL every module of the
 * binary has: so `new Worker(new URL("./<name>.ts", import.meta.url))` names it in the binary as
 * it does in the source tree. Their names must therefore differ.
 */
export const WORKER_ENTRY_POINTS = [
  resolve(root, "src", "storage", "flsm", "compaction", "compaction-worker.ts"),
  resolve(root, "src", "storage", "flsm", "flush", "flush-worker.ts"),
];

/** Compiles `entry` and the Workers into the executable `outfile`. */
export function compileExecutable(entry: string, outfile: string): string {
  const result = Bun.spawnSync(
    // Bytecode: a call starts without parsing the whole bundle, which was most of what a short client
    // command cost (scripts/bench-cli-startup.ts). Bytecode with top-level await needs ESM output.
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      "--bytecode",
      "--format",
      "esm",
      "--entry-naming",
      "[name].[ext]",
      entry,
      ...WORKER_ENTRY_POINTS,
      "--outfile",
      outfile,
    ],
    { cwd: root, stdout: "inherit", stderr: "inherit" },
  );
  if (result.exitCode !== 0) throw new Error(`bun build --compile failed with exit code ${result.exitCode}`);
  return outfile;
}

export function buildBinary(outfile: string = resolve(root, "dist", "homekv")): string {
  return compileExecutable(resolve(root, "src", "main.ts"), outfile);
}

if (import.meta.main) console.log(`built ${buildBinary(process.argv[2] ? resolve(process.argv[2]) : undefined)}`);
