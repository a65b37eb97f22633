import { expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { generateProto } from "../scripts/gen-proto.ts";
import { ROOT } from "./helpers/processes.ts";

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

test("src/gen is exactly what scripts/gen-proto generates from api/proto", () => {
  const scratch = mkdtempSync(join(tmpdir(), "homekv-gen-"));
  try {
    const fresh = generateProto(scratch);
    const committed = join(ROOT, "src", "gen");
    expect(listFiles(committed)).toEqual(listFiles(fresh));
    for (const file of listFiles(fresh)) {
      expect({ file, text: readFileSync(join(committed, file), "utf8") }).toEqual({
        file,
        text: readFileSync(join(fresh, file), "utf8"),
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}, 60_000);
