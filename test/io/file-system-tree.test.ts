import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorCode, type FileSystem } from "../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { realFileSystem } from "../../src/io/fs/real-fs.ts";
import { bytes, text } from "../helpers/bytes.ts";

const realDir = mkdtempSync(join(tmpdir(), "homekv-tree-"));
afterAll(() => rmSync(realDir, { recursive: true, force: true }));

const systems: [string, () => { fs: FileSystem; dir: string }][] = [
  ["in memory", () => ({ fs: new MemoryFileSystem(), dir: "/d" })],
  ["real files", () => ({ fs: realFileSystem, dir: mkdtempSync(join(realDir, "case-")) })],
];

/** What a backup does with directories (backup/backup-dir.ts): ask whether a name is taken, rename a whole tree, remove one. */
describe.each(systems)("directories on %s", (_, make) => {
  test("exists: files, directories, and directories only implied by what is under them", async () => {
    const { fs, dir } = make();
    await fs.mkdirp(`${dir}/a/b`);
    await fs.createExclusive(`${dir}/a/b/file`, bytes("x"));
    for (const path of [dir, `${dir}/a`, `${dir}/a/b`, `${dir}/a/b/file`]) expect(await fs.exists(path)).toBe(true);
    for (const path of [`${dir}/a/c`, `${dir}/a/b/file2`, `${dir}/a/b/fil`]) expect(await fs.exists(path)).toBe(false);
  });

  test("rename moves a directory with everything under it, and refuses a target holding something", async () => {
    const { fs, dir } = make();
    await fs.mkdirp(`${dir}/tmp/sub`);
    await fs.mkdirp(`${dir}/tmp/empty`);
    await fs.createExclusive(`${dir}/tmp/top`, bytes("top"));
    await fs.createExclusive(`${dir}/tmp/sub/deep`, bytes("deep"));
    await fs.mkdirp(`${dir}/taken`);
    await fs.createExclusive(`${dir}/taken/file`, bytes("taken"));
    const refused = await fs.rename(`${dir}/tmp`, `${dir}/taken`).catch((error: unknown) => error);
    expect(["ENOTEMPTY", "EEXIST"]).toContain(String(errorCode(refused)));
    await fs.rename(`${dir}/tmp`, `${dir}/final`);
    expect(await fs.exists(`${dir}/tmp`)).toBe(false);
    expect(text(await fs.readFile(`${dir}/final/top`))).toBe("top");
    expect(text(await fs.readFile(`${dir}/final/sub/deep`))).toBe("deep");
    expect(await fs.list(`${dir}/final/empty`)).toEqual([]);
  });

  test("removeTree removes a directory and all under it, leaves its neighbours, and ignores what is missing", async () => {
    const { fs, dir } = make();
    await fs.mkdirp(`${dir}/gone/sub`);
    await fs.createExclusive(`${dir}/gone/sub/file`, bytes("x"));
    await fs.createExclusive(`${dir}/gone-not`, bytes("y"));
    await fs.removeTree(`${dir}/gone`);
    await fs.removeTree(`${dir}/never`);
    expect(await fs.exists(`${dir}/gone`)).toBe(false);
    expect(await fs.exists(`${dir}/gone/sub/file`)).toBe(false);
    expect(text(await fs.readFile(`${dir}/gone-not`))).toBe("y");
  });
});
