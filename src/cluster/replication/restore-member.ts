import { randomBytes } from "node:crypto";
import { dirname } from "node:path";
import { HomeKvError } from "../../errors.ts";
import { diskError } from "../../io/fs/disk-error.ts";
import { errorCode, type FileSystem, listIfExists } from "../../io/fs/file-system.ts";
import { loadNewestCheckpoint } from "../../storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../storage/checkpoint/checkpoint-writer.ts";
import { claimDataDirEngine } from "../../storage/data-dir-engine.ts";
import { createMvccStore } from "../../storage/mvcc/store.ts";
import { DurableRaftLog } from "../raft/durable-log.ts";
import type { ConfState, MemberAddress } from "../raft/types.ts";
import { CHECKPOINT_SNAPSHOT_DATA } from "./member-checkpoints.ts";
import { raftIdOf } from "./member-id.ts";

const SLICE_KEYS = 4_096;

/**
 * The file that names the member a data directory was restored for and its cluster's id
 * (`<dir>/RESTORED`): a server started on it under another name or id is refused (restoredDirCheck).
 */
export const RESTORED_FILE = "RESTORED";

/**
 * Where a restored group's log begins, read from the clock at the restore: its snapshot stands at
 * index `ms × 1000` of term `ms` (milliseconds since 1970). Both are above anything a log that
 * existed before can hold, by construction rather than by luck:
 * - a log's index grows by one an entry, far below a million a second, and its term by one an
 *   election, far below a thousand a second (an election takes ticks of milliseconds); so a log
 *   founded at any time before, or restored earlier the same way, has a lower last index and term
 *   than these (a safe integer holds indexes from here for some 200 years at a million a second);
 * - so a log of another cluster tells itself apart (restoredLogCheck refuses it at start); and were
 *   one let in, it would have committed less than the snapshot's index and be sent it, which
 *   replaces its log and store, and its last term would be lower, so it could not win the restored
 *   member's vote (stale members could still elect one of themselves and make the restored member
 *   follow: the cluster id keeps them out, restoredClusterId);
 * - whereas at index 1 of term 1, the position of every founded log's first entry, such a joiner
 *   would match the snapshot without having its data, and be left with its own.
 * A clock set back by more than the time since the last restore would break this; restoring twice
 * into one cluster would too (the second restore's log is ahead of the first's): restore once.
 */
export function restoredPosition(nowMs: number): { index: number; term: number } {
  const index = nowMs * 1_000;
  if (!(nowMs > 0 && Number.isSafeInteger(index)))
    throw new HomeKvError("E_CONFIG", `the clock reads ${nowMs} ms since 1970: a restore needs a clock set right`);
  return { index, term: nowMs };
}

/**
 * A restored cluster's id: `<base>.restored-<ms>`, the milliseconds of its restoredPosition. A new
 * id keeps the old cluster's members out (every member's peer handshake compares ids), and a member
 * started under it can tell a log of this cluster (empty, or at or past the restored index) from
 * one of another (restoredLogCheck).
 */
const RESTORED_ID_MARK = ".restored-";

export function restoredClusterId(base: string, nowMs: number): string {
  const mark = `${RESTORED_ID_MARK}${nowMs}`;
  return `${base.slice(0, 64 - mark.length)}${mark}`;
}

/** The milliseconds a restored cluster's id was minted at; undefined for any other id. */
export function restoredAtMs(clusterId: string): number | undefined {
  const at = clusterId.lastIndexOf(RESTORED_ID_MARK);
  if (at === -1) return undefined;
  const ms = Number(clusterId.slice(at + RESTORED_ID_MARK.length));
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

export function isRestoredClusterId(clusterId: string): boolean {
  return restoredAtMs(clusterId) !== undefined;
}

export interface RestoredMember {
  revision: number;
  /** Live keys. */
  keys: number;
  /** Bytes of the member's checkpoint. */
  bytes: number;
  /** The new cluster's id: every member is started with it (`--cluster-id`). */
  clusterId: string;
}

/**
 * Founds a replicated group of one member, `founder`, holding a backup's data (`homekv restore`, as
 * etcd's `snapshot restore`): writes a new member data directory `dataDir` whose Raft log is a
 * snapshot at restoredPosition, with `founder` its only voter, standing for a replicated checkpoint
 * of the backup's store. A server started on it (`homekv serve` with the same node id) is that
 * group's member at the backup's revision, and leads it alone. Members added to it (`homekv
 * cluster add`) are sent the snapshot: the log holds no entry before it.
 *
 * One member, not several: each member restored on its own would have a log of its own position,
 * and the later ones would be ahead of the leader's. The others join as any new member does.
 *
 *   <dataDir>.tmp-<8 hex>/          written here first, then synced and renamed to dataDir
 *     ENGINE                        memory
 *     RESTORED                      the founder's name
 *     raft/                         the log: the snapshot, hard state at its term and index
 *     checkpoints/<index>.rckpt     the backup's store at that index, the founder as its member
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
  /** What the new cluster's id begins with (restoredClusterId). */
  clusterIdBase: string;
  /** Default: Date.now (restoredPosition). */
  nowMs?: () => number;
}): Promise<RestoredMember> {
  const { fs, backup, dataDir, founder } = options;
  const nowMs = Math.floor((options.nowMs ?? Date.now)());
  const position = restoredPosition(nowMs);
  const clusterId = restoredClusterId(options.clusterIdBase, nowMs);
  await checkBackup(fs, backup);
  await refuseExisting(fs, dataDir);
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
        index: position.index,
        revision: store.revision,
        term: position.term,
        ...conf,
        replica: { members: [founder], requestIds: [] },
      }),
    });
    const log = await DurableRaftLog.open(fs, `${temporary}/raft`);
    try {
      await log.installSnapshot({ ...position, data: CHECKPOINT_SNAPSHOT_DATA, conf });
      await log.persist({ term: position.term, vote: 0, commit: position.index }, [], true);
    } finally {
      await log.close();
    }
    await fs.createExclusive(
      `${temporary}/${RESTORED_FILE}`,
      new TextEncoder().encode(`${founder.name}\n${clusterId}\n`),
    );
    await fs.syncDir(temporary);
    // Checked again: a rename onto an empty directory made meanwhile would replace it.
    await refuseExisting(fs, dataDir);
    await fs.rename(temporary, dataDir);
    written = dataDir;
    await fs.syncDir(dirname(dataDir));
    return { revision: checkpoint.revision, keys: checkpoint.entries, bytes: checkpoint.bytes, clusterId };
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
  if ((await listIfExists(fs, `${backup}/wal`)).length > 0)
    throw new HomeKvError(
      "E_PRECONDITION",
      `${backup} is a server's data directory, not a backup: its write-ahead log (${backup}/wal) may hold writes its checkpoint lacks; start a server on it and take a backup with homekv backup`,
    );
}

async function refuseExisting(fs: FileSystem, dataDir: string): Promise<void> {
  if (await fs.exists(dataDir))
    throw new HomeKvError(
      "E_PRECONDITION",
      `cannot restore into ${dataDir}: it already exists (a restore writes a new data directory only)`,
    );
}

/**
 * At a member's start: a data directory restored for a member (its RESTORED file: the member's name
 * and the new cluster's id) is refused under another name, where the member would be no voter of
 * its group and wait without a word, and under another cluster id, which would let the old
 * cluster's members reach it. (`--bootstrap-expect` under a restored id is refused with the
 * settings: a restored group grows by `homekv cluster add`.)
 */
export async function restoredDirCheck(
  fs: FileSystem,
  dir: string,
  self: { name: string; clusterId: string },
): Promise<void> {
  let text: string;
  try {
    text = new TextDecoder().decode(await fs.readFile(`${dir}/${RESTORED_FILE}`));
  } catch (error) {
    if (errorCode(error) === "ENOENT") return;
    throw error;
  }
  const [restoredFor = "", clusterId = ""] = text.split("\n");
  if (restoredFor !== self.name || clusterId !== self.clusterId)
    throw new HomeKvError(
      "E_CONFIG",
      `data directory ${dir} was restored as member ${restoredFor} of cluster ${clusterId} (homekv restore): start it with --node-id ${restoredFor} --cluster-id ${clusterId}`,
    );
}

const JOIN_RESTORED = "join it on an empty --data-dir with --initial-cluster-state existing, then homekv cluster add";

/**
 * At a first start (no Raft log yet) founding a group (`--initial-cluster-state new`) under a
 * restored cluster's id: refused before anything is written. That cluster exists, its one member
 * restored, and a server founding another group under its id would lead it alone and acknowledge
 * writes that the restored data replaces once it is added.
 */
export async function refuseFoundingRestoredCluster(
  fs: FileSystem,
  dir: string,
  clusterId: string,
  founding: { kind: string; initialState?: string },
): Promise<void> {
  if (!isRestoredClusterId(clusterId) || founding.kind !== "static" || founding.initialState !== "new") return;
  if ((await listIfExists(fs, `${dir}/raft`)).length === 0)
    throw new HomeKvError(
      "E_CONFIG",
      `cluster ${clusterId} was restored from a backup (homekv restore) and exists already: ${JOIN_RESTORED}`,
    );
}

/**
 * At a member's start under a restored cluster's id, its Raft log opened: a log holding entries
 * below where that cluster began (`restoredPosition`) is another cluster's — the old cluster's, or
 * one founded on its own — and is refused. An empty log passes (a joiner, even one that had learned
 * a term before its snapshot came), as does one at or past the restored index. (Raft alone would
 * bring such a log over, but its member could meanwhile lead a group of its own.)
 */
export function restoredLogCheck(clusterId: string, lastIndex: number, dir: string): void {
  const ms = restoredAtMs(clusterId);
  if (ms === undefined) return;
  const began = restoredPosition(ms).index;
  if (lastIndex > 0 && lastIndex < began)
    throw new HomeKvError(
      "E_CONFIG",
      `data directory ${dir} holds the Raft log of another cluster (its last index ${lastIndex} is below ${began}, where cluster ${clusterId} began): ${JOIN_RESTORED}`,
    );
}
