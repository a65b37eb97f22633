import { DurableRaftLog } from "../cluster/raft/durable-log.ts";
import { startReplicatedMember } from "../cluster/replication/replicated-member.ts";
import { createPeerTransport } from "../cluster/transport/peer-transport.ts";
import { HomeKvError } from "../errors.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { mulberry32 } from "../random.ts";
import { lockDataDir, processIsAlive } from "../storage/data-dir-lock.ts";
import type { Database } from "../storage/database.ts";
import type { RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/** A linearizable read waits this long for the leader's confirmation, then UNAVAILABLE. */
const READ_TIMEOUT_MS = 5_000;

/**
 * The store of a member of a replicated cluster (`--initial-cluster`): the Raft log in
 * `<data dir>/raft` is the log (it replaces the WAL), the store is rebuilt from it at start, peers
 * talk over the peer transport on `--peer-port`. Raft node ids are the members' positions in the
 * list sorted by name, so every member derives the same ones whatever order it was given.
 *
 *   dir/LOCK                      pid of the server using it
 *   dir/raft/                     the Raft log (src/cluster/raft/durable-log-format.ts)
 *   dir/checkpoints/<index>.rckpt the store at a Raft index: the log's snapshot and the newer ones
 *                                 (src/storage/checkpoint/checkpoint-format.ts)
 */
export async function openReplicatedDatabase(
  config: ServeConfig,
  raftConfig: RaftConfig,
  log: NodeLog,
): Promise<Database> {
  if (config.storage.kind !== "disk")
    throw new HomeKvError("E_CONFIG", "a replicated member keeps its Raft log on disk: give it --data-dir");
  const { dir } = config.storage;
  await realFileSystem.mkdirp(dir);
  const lock = await lockDataDir({ fs: realFileSystem, dir, pid: process.pid, isAlive: processIsAlive });
  const names = [...raftConfig.members].sort((a, b) => (a.name < b.name ? -1 : 1));
  const ids = new Map(names.map((member, i) => [member.name, i + 1]));
  const release = async (raftLog?: DurableRaftLog) => {
    try {
      await raftLog?.close();
    } finally {
      await lock.release();
    }
  };
  let raftLog: DurableRaftLog | undefined;
  let transport: ReturnType<typeof createPeerTransport>;
  try {
    raftLog = await DurableRaftLog.open(realFileSystem, `${dir}/raft`, (line) => log.warn(line));
    transport = createPeerTransport({
      clusterId: config.cluster.clusterId,
      nodeId: config.cluster.nodeId,
      host: config.host,
      port: raftConfig.peerPort,
      peers: Object.fromEntries(
        raftConfig.members.filter((m) => m.name !== config.cluster.nodeId).map((m) => [m.name, m.address]),
      ),
      token: raftConfig.token,
      log: (line) => log.warn(line),
    });
  } catch (error) {
    // The peer port taken, the log damaged: let go of what was opened, then fail the start.
    await release(raftLog);
    throw error;
  }
  let db: Database;
  try {
    ({ db } = await startReplicatedMember({
      id: ids.get(config.cluster.nodeId)!,
      voters: [...ids.values()],
      names: new Map([...ids].map(([name, id]) => [id, name])),
      raftLog,
      transport,
      fs: realFileSystem,
      checkpointDir: `${dir}/checkpoints`,
      checkpointLogBytes: config.storage.checkpointWalBytes,
      logTailEntries: raftConfig.logTailEntries,
      settings: {
        historyRevisions: config.history.revisions,
        watch: { onBug: (error) => log.error("internal error in a watcher:", error) },
      },
      tickMs: raftConfig.tickMs,
      random: mulberry32(Math.floor(Math.random() * 2 ** 32)),
      readTimeoutMs: READ_TIMEOUT_MS,
      log,
      async onClose() {
        transport.close();
        await release(raftLog);
      },
    }));
  } catch (error) {
    // A checkpoint damaged or missing: the same.
    transport.close();
    await release(raftLog);
    throw error;
  }
  log.info(
    `member ${config.cluster.nodeId} of a replicated cluster of ${names.length} (${names.map((m) => m.name).join(", ")}): peers on ${transport.address}`,
  );
  return db;
}
