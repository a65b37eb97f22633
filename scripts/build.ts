#!/usr/bin/env bun
/**
 * Compiles the whole program, with the Bun runtime, into one self-contained executable:
 * dist/homekv. It runs with no node_modules and no .proto on disk: the codecs, and the descriptor set
 * health and reflection are built from, are generated code (src/gen).
 * `bun scripts/build.ts [OUTFILE]`.
 */
import { resolve } from "node:path";

const root = resolve(import.meta.dir, "..");

export function buildBinary(outfile: string = resolve(root, "dist", "homekv")): string {
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
      resolve(root, "src", "main.ts"),
      "--outfile",
      outfile,
    ],
    { cwd: root, stdout: "inherit", stderr: "inherit" },
  );
  if (result.exitCode !== 0) throw new Error(`bun build --compile failed with exit code ${result.exitCode}`);
  return outfile;
}

if (import.meta.main) console.log(`built ${buildBinary(process.argv[2] ? resolve(process.argv[2]) : undefined)}`);
