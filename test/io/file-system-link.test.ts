import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorCode, type FileSystem } from "../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { realFileSystem } from "../../src/io/fs/real-fs.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);
const realDir = mkdtempSync(join(tmpdir(), "homekv-link-"));
afterAll(() => rmSync(realDir, { recursive: true, force: true }));

const systems: [string, () => { fs: FileSystem; dir: string }][] = [
  ["in memory", () => ({ fs: new MemoryFileSystem(), dir: "/d" })],
  ["real files", () => ({ fs: realFileSystem, dir: mkdtempSync(join(realDir, "case-")) })],
];

describe.each(systems)("link on %s", (_, make) => {
  test("a second name reads the same bytes and outlives the first", async () => {
    const { fs, dir } = make();
    await fs.mkdirp(dir);
    await fs.createExclusive(`${dir}/table.sst`, bytes("immutable"));
    await fs.link(`${dir}/table.sst`, `${dir}/checkpoint.sst`);
    await fs.syncDir(dir);
    await fs.remove(`${dir}/table.sst`);
    expect(text(await fs.readFile(`${dir}/checkpoint.sst`))).toBe("immutable");
    expect((await fs.list(dir)).sort()).toEqual(["checkpoint.sst"]);
  });

  test("EEXIST when the second name is taken, and nothing changes", async () => {
    const { fs, dir } = make();
    await fs.mkdirp(dir);
    await fs.createExclusive(`${dir}/a`, bytes("a"));
    await fs.createExclusive(`${dir}/b`, bytes("b"));
    const failure = await fs.link(`${dir}/a`, `${dir}/b`).catch((error: unknown) => error);
    expect(errorCode(failure)).toBe("EEXIST");
    expect(text(await fs.readFile(`${dir}/b`))).toBe("b");
  });
});

test("in memory, a link keeps what was synced through a crash, like the file it names", async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("/d");
  const file = await fs.openAppend("/d/a");
  await file.append(bytes("synced"));
  await file.sync();
  await file.append(bytes(" and not"));
  await fs.link("/d/a", "/d/b");
  fs.crash();
  expect(text(await fs.readFile("/d/b"))).toBe("synced");
});
