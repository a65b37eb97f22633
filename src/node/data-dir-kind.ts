import { HomeKvError } from "../errors.ts";
import { type FileSystem, listIfExists } from "../io/fs/file-system.ts";

/** What a server is started as, and so what it writes in its data directory. */
export type DataDirKind = "single" | "replicated" | "partitioned";

/** What each kind of server leaves in its data directory, that no other kind writes. */
const SIGNS: Record<DataDirKind, { what: string; holds: (dir: Listing) => boolean }> = {
  single: {
    what: "a single server's data (its WAL, checkpoints or FLSM tables)",
    holds: (d) => d.wal.length > 0 || d.flsm.length > 0 || d.checkpoints.some((name) => name.endsWith(".ckpt")),
  },
  replicated: {
    what: "a replicated cluster member's data (its Raft log and checkpoints)",
    holds: (d) =>
      d.raft.length > 0 || d.top.includes("RESTORED") || d.checkpoints.some((name) => name.endsWith(".rckpt")),
  },
  partitioned: {
    what: "a partitioned cluster node's data (its groups' Raft logs)",
    holds: (d) => d.groups.length > 0 || d.partitions.length > 0,
  },
};

const HOW_TO_START: Record<DataDirKind, string> = {
  single: "start it as a single server (without --initial-cluster or --bootstrap-expect)",
  replicated: "start it as the member it is (--initial-cluster or --bootstrap-expect, without --partitions)",
  partitioned: "start it as the partitioned node it is (with --partitions)",
};

const RESTORED_HOW =
  "start it as the member homekv restore made it (the --node-id and --cluster-id in its RESTORED file, with --initial-cluster and --peer-port)";

interface Listing {
  top: string[];
  wal: string[];
  flsm: string[];
  checkpoints: string[];
  raft: string[];
  groups: string[];
  partitions: string[];
}

/**
 * Refuses to start a server of `kind` on a data directory that holds another kind's data and none of
 * its own: it would start empty beside that data and ignore it without a word (and a single server
 * would write a WAL that the member it was later started as again would not read). A backup is a
 * single server's data; `homekv restore` founds a cluster from it.
 */
export async function refuseOtherKindsData(fs: FileSystem, dir: string, kind: DataDirKind): Promise<void> {
  const [top, wal, flsm, checkpoints, raft, groups, partitions] = await Promise.all(
    ["", "/wal", "/flsm", "/checkpoints", "/raft", "/groups", "/partitions"].map((sub) =>
      listIfExists(fs, `${dir}${sub}`),
    ),
  );
  const listing: Listing = {
    top: top!,
    wal: wal!,
    flsm: flsm!,
    checkpoints: checkpoints!,
    raft: raft!,
    groups: groups!,
    partitions: partitions!,
  };
  if (SIGNS[kind].holds(listing)) return;
  const other = (Object.keys(SIGNS) as DataDirKind[]).find((k) => k !== kind && SIGNS[k].holds(listing));
  if (other === undefined) return;
  const restore =
    other === "single" && kind !== "single" ? ", found a new cluster from a backup of it with homekv restore," : "";
  // A restored member's directory names the --node-id and --cluster-id it starts with.
  const how = other === "replicated" && listing.top.includes("RESTORED") ? RESTORED_HOW : HOW_TO_START[other];
  throw new HomeKvError(
    "E_CONFIG",
    `data directory ${dir} holds ${SIGNS[other].what}, which this server would not load: ${how}${restore} or give this one an empty --data-dir`,
  );
}
