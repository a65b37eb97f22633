#!/usr/bin/env bun
/**
 * Regenerates src/gen/ from api/proto/ with buf and ts-proto, both from node_modules: no protoc
 * download, no network. The freshness test calls `generateProto` with a temporary root and compares.
 */
import { rmSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");

/** Writes the generated code to `<intoRoot>/src/gen` (buf.gen.yaml names that folder). */
export function generateProto(intoRoot: string = root): string {
  const outDir = join(intoRoot, "src", "gen");
  rmSync(outDir, { recursive: true, force: true });
  const buf = join(root, "node_modules", ".bin", "buf");
  const result = Bun.spawnSync([buf, "generate", "--template", "buf.gen.yaml", "-o", intoRoot], {
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  });
  if (result.exitCode !== 0) throw new Error(`buf generate failed with exit code ${result.exitCode}`);
  return outDir;
}

if (import.meta.main) console.log(`generated ${generateProto()}`);
