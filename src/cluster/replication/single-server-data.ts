import { HomeKvError } from "../../errors.ts";
import { errorCode, type FileSystem } from "../../io/fs/file-system.ts";

/**
 * Refuses to start a cluster node on a single server's data (a backup, or a data directory a
 * single server wrote: WAL segments, `.ckpt` checkpoints, FLSM tables) while its own Raft log in
 * `raftDir` is still empty: the node would found or join a group with an empty store, and the data
 * beside it would be ignored without a word. (A node's own checkpoints are `.rckpt` files.)
 */
export async function refuseSingleServerData(fs: FileSystem, dir: string, raftDir: string): Promise<void> {
  const list = (path: string) =>
    fs.list(path).catch((error: unknown) => {
      if (errorCode(error) === "ENOENT") return [];
      throw error;
    });
  if ((await list(raftDir)).length > 0) return;
  const singleServer =
    (await list(`${dir}/wal`)).length > 0 ||
    (await list(`${dir}/flsm`)).length > 0 ||
    (await list(`${dir}/checkpoints`)).some((name) => name.endsWith(".ckpt"));
  if (singleServer)
    throw new HomeKvError(
      "E_CONFIG",
      `data directory ${dir} holds a single server's data, which a cluster node would not load: start it as a single server (without --initial-cluster or --bootstrap-expect), found a new cluster from a backup of it with homekv restore, or give the node an empty --data-dir`,
    );
}
