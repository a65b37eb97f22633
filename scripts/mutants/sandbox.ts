import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Mutant } from "./raft-mutants.ts";

/** What a copy needs to run the tests; node_modules is linked, not copied. */
const COPIED = ["src", "test", "scripts", "package.json", "tsconfig.json", "bunfig.toml"];

/** The source with the mutant planted; throws unless its search string occurs exactly once. */
export function plant(source: string, mutant: Mutant): string {
  const first = source.indexOf(mutant.search);
  if (first === -1)
    throw new Error(
      `mutant ${mutant.name}: its search string is not in ${mutant.file} (the code moved: update the mutant)\n${mutant.search}`,
    );
  if (source.indexOf(mutant.search, first + 1) !== -1)
    throw new Error(`mutant ${mutant.name}: its search string occurs more than once in ${mutant.file}`);
  return source.slice(0, first) + mutant.replace + source.slice(first + mutant.search.length);
}

/**
 * A copy of the project in a temporary directory, where mutants are planted one at a time. The
 * real files are only read.
 */
export class Sandbox {
  readonly dir: string;

  constructor(private readonly root: string) {
    this.dir = mkdtempSync(join(tmpdir(), "homekv-mutants-"));
    for (const name of COPIED) cpSync(join(root, name), join(this.dir, name), { recursive: true });
    symlinkSync(resolve(root, "node_modules"), join(this.dir, "node_modules"), "dir");
  }

  /** Plants `mutant` in the copy, runs `body`, and puts the copy's file back whatever happens. */
  async with<T>(mutant: Mutant, body: () => Promise<T>): Promise<T> {
    const path = join(this.dir, mutant.file);
    const original = readFileSync(join(this.root, mutant.file), "utf8");
    writeFileSync(path, plant(original, mutant));
    try {
      return await body();
    } finally {
      writeFileSync(path, original);
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
