import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { type DataDirKind, refuseOtherKindsData } from "../../src/node/data-dir-kind.ts";
import { rejection, rejectionMessage } from "../helpers/rejection.ts";

/**
 * A server refuses a data directory that holds another kind of server's data and none of its own
 * (data-dir-kind.ts); its own data, an empty directory, or a mix it already wrote, start.
 */
async function dirWith(files: string[]): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("/d");
  for (const file of files) {
    await fs.mkdirp(file.slice(0, file.lastIndexOf("/")));
    await fs.createExclusive(file, Uint8Array.of(1));
  }
  return fs;
}

const SINGLE = [["/d/wal/00000000000000000001.wal"], ["/d/checkpoints/00000000000000000007.ckpt"], ["/d/flsm/CURRENT"]];
const REPLICATED = [
  ["/d/raft/00000000000000000001.log"],
  ["/d/checkpoints/00000000000000000009.rckpt"],
  ["/d/RESTORED"],
];
const PARTITIONED = [["/d/groups/segment"], ["/d/partitions/x"]];

test("each kind of server refuses the others' data, naming what it found and how to start it", async () => {
  const cases: [DataDirKind, string[][], DataDirKind, string][] = [
    ["replicated", SINGLE, "single", "a single server's data (its WAL, checkpoints or FLSM tables)"],
    ["partitioned", SINGLE, "single", "a single server's data (its WAL, checkpoints or FLSM tables)"],
    ["single", REPLICATED, "replicated", "a replicated cluster member's data (its Raft log and checkpoints)"],
    ["partitioned", REPLICATED, "replicated", "a replicated cluster member's data (its Raft log and checkpoints)"],
    ["single", PARTITIONED, "partitioned", "a partitioned cluster node's data (its groups' Raft logs)"],
    ["replicated", PARTITIONED, "partitioned", "a partitioned cluster node's data (its groups' Raft logs)"],
  ];
  for (const [kind, layouts, , what] of cases)
    for (const files of layouts)
      expect(await rejection(refuseOtherKindsData(await dirWith(["/d/ENGINE", ...files]), "/d", kind))).toMatchObject({
        code: "E_CONFIG",
        message: expect.stringContaining(`data directory /d holds ${what}, which this server would not load`),
      });
  expect(await rejectionMessage(refuseOtherKindsData(await dirWith(SINGLE[0]!), "/d", "replicated"))).toMatch(
    "found a new cluster from a backup of it with homekv restore",
  );
});

test("an empty directory, a server's own data, or its own beside another's, start", async () => {
  for (const kind of ["single", "replicated", "partitioned"] as const)
    await refuseOtherKindsData(await dirWith([]), "/d", kind);
  for (const files of SINGLE) await refuseOtherKindsData(await dirWith(files), "/d", "single");
  for (const files of REPLICATED) await refuseOtherKindsData(await dirWith(files), "/d", "replicated");
  for (const files of PARTITIONED) await refuseOtherKindsData(await dirWith(files), "/d", "partitioned");
  await refuseOtherKindsData(await dirWith([...REPLICATED[0]!, ...SINGLE[0]!]), "/d", "replicated");
});
