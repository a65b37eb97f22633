import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { HomeKvError } from "../../errors.ts";
import { diskError } from "../../io/fs/disk-error.ts";
import { errorCode, type FileSystem } from "../../io/fs/file-system.ts";
import { loadNewestCheckpoint } from "../../storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../storage/checkpoint/checkpoint-writer.ts";
import { claimDataDirEngine } from "../../storage/data-dir-engine.ts";
import { createMvccStore } from "../../storage/mvcc/store.ts";
import { DurableRaftLog } from "../raft/durable-log.ts";
import type { ConfState, MemberAddress } from "../raft/types.ts";
import { CHECKPOINT_SNAPSHOT_DATA } from "./member-checkpoints.ts";
import { raftIdOf } from "./member-id.ts";

/** Where a restored group's log begins: its snapshot, the backup, stands at index 1 of term 1. */
const RESTORED_INDEX = 1;
const RESTORED_TERM = 1;
const SLICE_KEYS = 4_096;

export interface RestoredMember {
  revision: number;
  /** Live keys. */
  keys: number;
  /** Bytes of the member's checkpoint. */
  bytes: number;
}

/**
 * Founds a replicated group of one member, `founder`, holding a backup's data (`homekv restore`, as
 * etcd's `snapshot restore`): writes a new member data directory `dataDir` whose Raft log starts at
 * a snapshot, at index 1 of term 1 with `founder` its only voter, that stands for a replicated
 * checkpoint of the backup's store. A server started on it (`homekv serve` with the same node id)
 * is that group's member at the backup's revision, and leads it alone.
 *
 * One member, not several: members restored each on their own could only be kept from starting on
 * different backups (or beside a member founded empty) by a check the group does not have, and Raft
 * would then take their different states for the same log. The others are added as any new member
 * (`homekv cluster add`); the log holds no entry before the snapshot, so each is sent it whole.
 *
 *   <dataDir>.tmp-<8 hex>/          written here first, then synced and renamed to dataDir
 *     ENGINE                        memory
 *     raft/                         the log: the snapshot at index 1, hard state term 1, commit 1
 *     checkpoints/<1>.rckpt         the backup's store at index 1, the founder as its member
 *
 * The backup must be one of the memory engine (a cluster's store is in memory) written by `homekv
 * backup`: its checkpoint is all of it. A server's data directory, with a write-ahead log that may
 * hold writes beyond its checkpoint, is refused rather than restored short of them.
 */
export async function restoreMember(options: {
  fs: FileSystem;
  backup: string;
  dataDir: string;
  founder: MemberAddress;
}): Promise<RestoredMember> {
  const { fs, backup, dataDir, founder } = options;
  await checkBackup(fs, backup);
  if (await fs.exists(dataDir))
    throw new HomeKvError(
      "E_PRECONDITION",
      `cannot restore into ${dataDir}: it already exists (a restore writes a new data directory only)`,
    );
  const store = createMvccStore({ historyRevisions: Number.POSITIVE_INFINITY });
  const loaded = await loadNewestCheckpoint(fs, `${backup}/checkpoints`, (checkpoint) =>
    store.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
  );
  if (loaded === undefined)
    throw new HomeKvError(
      "E_PRECONDITION",
      `${backup} is not a backup: ${backup}/checkpoints holds no checkpoint (homekv backup writes one)`,
    );
  const temporary = `${dataDir}.tmp-${randomBytes(4).toString("hex")}`;
  let written: string | undefined = temporary;
  try {
    await fs.mkdirp(temporary);
    await claimDataDirEngine(fs, temporary, "memory");
    await fs.mkdirp(`${temporary}/checkpoints`);
    const id = raftIdOf(founder.name);
    const conf: ConfState = { voters: [id], learners: [] };
    const checkpoint = await writeCheckpoint({
      fs,
      dir: `${temporary}/checkpoints`,
      store,
      sliceKeysMax: SLICE_KEYS,
      raftPosition: () => ({
        index: RESTORED_INDEX,
        revision: store.revision,
        term: RESTORED_TERM,
        ...conf,
        replica: { members: [founder], requestIds: [] },
      }),
    });
    const log = await DurableRaftLog.open(fs, `${temporary}/raft`);
    try {
      await log.installSnapshot({ index: RESTORED_INDEX, term: RESTORED_TERM, data: CHECKPOINT_SNAPSHOT_DATA, conf });
      await log.persist({ term: RESTORED_TERM, vote: 0, commit: RESTORED_INDEX }, [], true);
    } finally {
      await log.close();
    }
    await fs.syncDir(temporary);
    await fs.rename(temporary, dataDir);
    written = dataDir;
    await fs.syncDir(dirname(dataDir));
    return { revision: checkpoint.revision, keys: checkpoint.entries, bytes: checkpoint.bytes };
  } catch (error) {
    await fs.removeTree(written).catch(() => {});
    throw error instanceof HomeKvError ? error : diskError(`the restore into ${dataDir} failed`, error);
  }
}

/** A backup of the memory engine, as `homekv backup` writes it: its checkpoint and an empty WAL. */
async function checkBackup(fs: FileSystem, backup: string): Promise<void> {
  const engine = await fs.readFile(`${backup}/ENGINE`).then(
    (bytes) => new TextDecoder().decode(bytes).trim(),
    (error: unknown) => {
      if (errorCode(error) === "ENOENT")
        throw new HomeKvError("E_PRECONDITION", `${backup} is not a backup: it has no ENGINE file`);
      throw error;
    },
  );
  if (engine !== "memory")
    throw new HomeKvError(
      "E_PRECONDITION",
      `${backup} is a backup of the ${engine} engine: a cluster keeps its store in memory and is restored from a backup of the memory engine`,
    );
  const wal = await fs.list(`${backup}/wal`).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  });
  if (wal.length > 0)
    throw new HomeKvError(
      "E_PRECONDITION",
      `${backup} is a server's data directory, not a backup: its write-ahead log (${backup}/wal) may hold writes its checkpoint lacks; start a server on it and take a backup with homekv backup`,
    );
}

/**
 * Refuses to start a replicated member on a single server's data (a backup, or a server's data
 * directory) with no Raft log yet: the member would found or join a group empty, and the data
 * beside it would be ignored without a word. (A member's own checkpoints are `.rckpt` files.)
 */
export async function refuseSingleServerData(fs: FileSystem, dir: string): Promise<void> {
  const list = (path: string) =>
    fs.list(path).catch((error: unknown) => {
      if (errorCode(error) === "ENOENT") return [];
      throw error;
    });
  if ((await list(`${dir}/raft`)).length > 0) return;
  const singleServer =
    (await list(`${dir}/wal`)).length > 0 || (await list(`${dir}/checkpoints`)).some((name) => name.endsWith(".ckpt"));
  if (singleServer)
    throw new HomeKvError(
      "E_CONFIG",
      `data directory ${dir} holds a single server's data, which a cluster member would not load: found a cluster from a backup of it with homekv restore, or start it as a single server (without --initial-cluster or --bootstrap-expect)`,
    );
}
