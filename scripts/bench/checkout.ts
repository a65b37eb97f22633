/** A HomeKV checkout a benchmark runs from source: this tree, or another one to compare with (`--compare DIR`). */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";

export interface Checkout {
  label: "A" | "B";
  dir: string;
  /** `git describe --always --dirty` of the checkout, or why there is none. */
  version: string;
}

function checkout(label: Checkout["label"], dir: string): Checkout {
  if (!existsSync(join(dir, "src", "main.ts"))) throw new Error(`${dir} is not a HomeKV checkout: no src/main.ts`);
  const git = Bun.spawnSync(["git", "-C", dir, "describe", "--always", "--dirty"], { stderr: "pipe" });
  const version = git.exitCode === 0 ? git.stdout.toString().trim() : "not a git checkout";
  return { label, dir, version };
}

/**
 * Every round's turns, each checkout once a round, which one goes first alternating by round: a
 * drift of the machine's load favours neither.
 */
export function* turnsOf(checkouts: readonly Checkout[], rounds: number): Generator<{ side: Checkout; round: number }> {
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? checkouts : [...checkouts].reverse();
    for (const side of order) yield { side, round };
  }
}

/**
 * This checkout (A) and, with `compareDir`, the other one (B), announced under `title` with the
 * date and the machine.
 */
export function announceCheckouts(title: string, compareDir: string): Checkout[] {
  const checkouts = [
    checkout("A", resolve(import.meta.dir, "..", "..")),
    ...(compareDir ? [checkout("B", resolve(compareDir))] : []),
  ];
  console.log(`# ${title} — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`);
  for (const side of checkouts) console.log(`${side.label}: ${side.dir} (${side.version})`);
  return checkouts;
}
