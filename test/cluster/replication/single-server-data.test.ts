import { expect, test } from "bun:test";
import { refuseSingleServerData } from "../../../src/cluster/replication/single-server-data.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";

/**
 * A cluster node's start refuses a data directory holding a single server's data while its own Raft
 * log is empty (single-server-data.ts); its own files, or a log already begun, pass.
 */
const bytes = Uint8Array.of(1);

async function dirWith(files: string[]): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("/d");
  for (const file of files) {
    await fs.mkdirp(file.slice(0, file.lastIndexOf("/")));
    await fs.createExclusive(file, bytes);
  }
  return fs;
}

test("a WAL, a single server's checkpoint or FLSM tables, with no Raft log yet, are refused, naming the directory", async () => {
  for (const file of [
    "/d/wal/00000000000000000001.wal",
    "/d/checkpoints/00000000000000000007.ckpt",
    "/d/flsm/CURRENT",
  ]) {
    const fs = await dirWith(["/d/ENGINE", file]);
    await expect(refuseSingleServerData(fs, "/d", "/d/raft")).rejects.toMatchObject({
      code: "E_CONFIG",
      message: expect.stringContaining(
        "data directory /d holds a single server's data, which a cluster node would not load",
      ),
    });
  }
});

test("an empty directory, a node's own checkpoints, or a Raft log already begun start", async () => {
  for (const files of [
    [],
    ["/d/ENGINE", "/d/checkpoints/00000000000000000001.rckpt"],
    ["/d/raft/00000000000000000001.log", "/d/wal/00000000000000000001.wal"],
    ["/d/groups/segment", "/d/checkpoints/00000000000000000007.ckpt"],
  ]) {
    const fs = await dirWith(files);
    const raftDir = files.some((f) => f.startsWith("/d/groups")) ? "/d/groups" : "/d/raft";
    await refuseSingleServerData(fs, "/d", raftDir);
  }
});
