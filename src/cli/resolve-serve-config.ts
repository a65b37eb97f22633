import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { DEFAULT_HOST } from "../address.ts";
import { ID_PATTERN } from "../cluster/gossip/node-state.ts";
import type { InitialClusterState } from "../cluster/replication/bootstrap.ts";
import { isRestoredClusterId } from "../cluster/replication/restore-member.ts";
import { HomeKvError } from "../errors.ts";
import type {
  ClusterConfig,
  PartitionsConfig,
  RaftConfig,
  ServeConfig,
  StaticFounding,
  StorageConfig,
} from "../node/serve-config.ts";
import { type AuthTokens, mergeTokens, parseAuthFile, parseInlineTokens } from "../server/auth.ts";
import type { Limits } from "../server/limits.ts";
import { loadServerTls, type ServerTls } from "../server/tls.ts";
import type { GrpcServerKind } from "../server/transport.ts";
import type { BlockCompression } from "../storage/engine.ts";
import type { FsyncMode } from "../storage/wal/wal-writer.ts";
import { DEFAULT_DATA_DIR, HISTORY_REVISIONS_DEFAULT, LIMIT_SETTINGS, type SERVE_SETTINGS } from "./serve-settings.ts";
import type { ResolvedSettings, SettingValues } from "./settings.ts";
import { UsageError } from "./usage-error.ts";

type ServeSettings = SettingValues<typeof SERVE_SETTINGS>;

/**
 * What `homekv serve` starts, from its resolved settings: every default applied, every rule between
 * settings checked (a mistake is a UsageError naming the settings). It reads only the files the
 * settings name (TLS certificates and keys, the auth file), and starts nothing.
 */
export function serveConfig(resolved: ResolvedSettings<typeof SERVE_SETTINGS>): ServeConfig {
  const settings = resolved.values;
  return {
    host: settings.host ?? DEFAULT_HOST,
    port: settings.port!,
    httpPort: settings["http-port"],
    storage: storageConfig(settings, resolved.sources),
    history: {
      // Given alone, a duration decides by itself; given both, whichever keeps less history wins.
      revisions:
        settings["history-revisions"] ??
        (settings["history-duration"] === undefined ? HISTORY_REVISIONS_DEFAULT : Infinity),
      durationMs: settings["history-duration"],
    },
    limits: Object.fromEntries(
      [...LIMIT_SETTINGS].map(([setting, name]) => [name, (settings as Record<string, unknown>)[setting] as number]),
    ) as unknown as Limits,
    tls: serverTls(settings["tls-cert"], settings["tls-key"], settings["tls-client-ca"]),
    auth: authTokens(settings["auth-file"], settings["auth-tokens"], resolved.sources["auth-tokens"]),
    connectionIdleTimeoutMs: settings["connection-idle-timeout"]!,
    grpcServer: settings["grpc-server"] as GrpcServerKind,
    cluster: clusterConfig(settings),
  };
}

function storageConfig(settings: ServeSettings, sources: Record<string, string>): StorageConfig {
  // --in-memory keeps nothing on disk, where the flsm engine keeps its tables: like --data-dir,
  // an flsm engine asked for at a higher level than --in-memory wins over it.
  if (
    settings["in-memory"] === true &&
    !outranks(sources, "data-dir", "in-memory") &&
    !(
      settings.engine === "flsm" && outranks(sources, "engine", "in-memory", "the flsm engine keeps its tables on disk")
    )
  )
    return { kind: "memory" };
  return {
    kind: "disk",
    dir: resolve(settings["data-dir"] ?? DEFAULT_DATA_DIR),
    engine:
      settings.engine === "flsm"
        ? {
            kind: "flsm",
            memtableBytes: settings["memtable-bytes"]!,
            blockCacheBytes: settings["block-cache-bytes"]!,
            compression: settings["table-compression"] as BlockCompression,
          }
        : { kind: "memory" },
    fsync: settings.fsync as FsyncMode,
    walSegmentBytesMax: settings["wal-segment-bytes"]!,
    checkpointWalBytes: settings["checkpoint-wal-bytes"]!,
  };
}

/**
 * Whether setting `a` was given at a higher level than `b` (flag > environment > file). For two that
 * exclude each other, like data-dir and in-memory: the higher one wins, and both at one level is an
 * error (saying `why` when given).
 */
function outranks(sources: Record<string, string>, a: string, b: string, why?: string): boolean {
  const rank = (source: string) =>
    source.startsWith("--") ? 3 : source.startsWith("HOMEKV_") ? 2 : source === "default" || source === "unset" ? 0 : 1;
  const [rankA, rankB] = [rank(sources[a]!), rank(sources[b]!)];
  if (rankA !== 0 && rankA === rankB)
    throw new UsageError(`${b} (${sources[b]}) and ${a} (${sources[a]}) exclude each other${why ? `: ${why}` : ""}`);
  return rankA > rankB;
}

function clusterConfig(settings: ServeSettings): ClusterConfig {
  const nodeId = settings["node-id"] ?? hostname().split(".")[0]!;
  const clusterId = settings["cluster-id"]!;
  for (const [name, id] of [
    ["node-id", nodeId],
    ["cluster-id", clusterId],
  ] as const) {
    if (!ID_PATTERN.test(id))
      throw new UsageError(
        `${name} must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit, not ${JSON.stringify(id)}`,
      );
  }
  const join =
    settings.join === undefined
      ? []
      : settings.join
          .split(",")
          .map((address) => address.trim())
          .filter((address) => address !== "");
  const port = settings["gossip-port"];
  if (port === undefined && join.length > 0) throw new UsageError("join needs gossip-port: a node gossips to join");
  return {
    nodeId,
    clusterId,
    gossip:
      port === undefined
        ? undefined
        : { port, join, intervalMs: settings["gossip-interval"]!, phiThreshold: settings["phi-threshold"]! },
    raft: raftConfig(settings, nodeId, port !== undefined),
  };
}

function raftConfig(settings: ServeSettings, nodeId: string, gossip: boolean): RaftConfig | undefined {
  const list = settings["initial-cluster"];
  const expect = settings["bootstrap-expect"];
  const peerPort = settings["peer-port"];
  if (list === undefined && expect === undefined && peerPort === undefined) return undefined;
  if (list !== undefined && expect !== undefined)
    throw new UsageError(
      "initial-cluster and bootstrap-expect exclude each other: name the members, or let gossip find them",
    );
  if (peerPort === undefined || (list === undefined && expect === undefined))
    throw new UsageError(
      "a replicated member needs peer-port, and initial-cluster or bootstrap-expect (with gossip-port) to find its group",
    );
  if (expect !== undefined && !gossip)
    throw new UsageError(
      "bootstrap-expect needs gossip-port (and join, but for the first server): gossip finds the others",
    );
  if (isRestoredClusterId(settings["cluster-id"]!) && (expect !== undefined || settings.partitions! > 1))
    throw new UsageError(
      "a cluster restored from a backup (its cluster-id says so) is one Raft group that grows by homekv cluster add: start members with initial-cluster and initial-cluster-state existing, without bootstrap-expect or partitions",
    );
  if (expect !== undefined && peerPort === 0)
    throw new UsageError("bootstrap-expect needs a fixed peer-port: it is published in gossip before it is bound");
  return {
    peerPort,
    founding: expect === undefined ? staticFounding(settings, list!, nodeId) : { kind: "gossip", expect },
    voters: settings.voters!,
    token: settings["cluster-token"],
    tickMs: settings["raft-tick"]!,
    logTailEntries: settings["raft-log-tail-entries"]!,
    checkpointEntries: settings["checkpoint-raft-entries"]!,
    deadServerAfterMs: settings.autopilot ? settings["dead-server-after"]! : undefined,
    partitions: partitionsConfig(settings),
  };
}

function partitionsConfig(settings: ServeSettings): PartitionsConfig | undefined {
  const count = settings.partitions!;
  if (count === 1) return undefined;
  return { count, replicas: settings.replicas! };
}

function staticFounding(settings: ServeSettings, list: string, nodeId: string): StaticFounding {
  const members = initialClusterMembers(list, nodeId);
  if (members.length > 7) throw new UsageError("initial-cluster names more than 7 members (voters are 1 to 7)");
  return { kind: "static", members, initialState: settings["initial-cluster-state"] as InitialClusterState };
}

/** The members `--initial-cluster` names (NAME=HOST:PEERPORT, comma-separated), this one among them. */
export function initialClusterMembers(list: string, nodeId: string): { name: string; address: string }[] {
  const members = list
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const match = /^([^=]+)=(.+:\d+)$/.exec(entry);
      if (!match || !ID_PATTERN.test(match[1]!))
        throw new UsageError(`initial-cluster entries are NAME=HOST:PEERPORT, not ${JSON.stringify(entry)}`);
      return { name: match[1]!, address: match[2]! };
    });
  const names = new Set(members.map((member) => member.name));
  if (names.size !== members.length) throw new UsageError("initial-cluster names a member twice");
  if (!names.has(nodeId))
    throw new UsageError(`initial-cluster does not name this member (node-id ${JSON.stringify(nodeId)})`);
  return members;
}

function serverTls(
  cert: string | undefined,
  key: string | undefined,
  clientCa: string | undefined,
): ServerTls | undefined {
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined)
      throw new UsageError("tls-client-ca needs tls-cert and tls-key: mutual TLS is TLS first");
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError("tls-cert and tls-key go together");
  return loadServerTls({ cert, key, clientCa });
}

function authTokens(
  file: string | undefined,
  inline: string | undefined,
  inlineSource: string,
): AuthTokens | undefined {
  const sets = [
    ...(file === undefined ? [] : [parseAuthFile(readAuthFile(file), file)]),
    ...(inline === undefined ? [] : [parseInlineTokens(inline, inlineSource)]),
  ];
  return sets.length === 0 ? undefined : mergeTokens(...sets);
}

function readAuthFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new HomeKvError(
      "E_CONFIG",
      `cannot read the auth file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
}
