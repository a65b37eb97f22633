import { describe, expect, test } from "bun:test";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { serveConfig } from "../../src/cli/resolve-serve-config.ts";
import { SERVE_SETTINGS } from "../../src/cli/serve-settings.ts";
import { resolveSettings, type SettingInputs } from "../../src/cli/settings.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { GOSSIP_DEFAULTS } from "../../src/cluster/gossip/index.ts";
import { HomeKvError } from "../../src/errors.ts";
import { DEFAULT_LIMITS } from "../../src/server/limits.ts";

/** `homekv serve`'s settings resolved as the command does, without starting anything. */
function config(inputs: Partial<SettingInputs> & { toml?: string }) {
  return serveConfig(
    resolveSettings(SERVE_SETTINGS, {
      flags: inputs.flags ?? {},
      env: inputs.env ?? {},
      ...(inputs.toml === undefined ? {} : { file: { path: "homekv.toml", text: inputs.toml } }),
    }),
  );
}

function usageError(inputs: Parameters<typeof config>[0]): string {
  try {
    config(inputs);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`no usage error for ${JSON.stringify(inputs)}`);
}

describe("serveConfig: the settings of homekv serve as one plain object", () => {
  test("nothing given: every default", () => {
    expect(config({})).toEqual({
      host: "127.0.0.1",
      port: 20001,
      httpPort: undefined,
      grpcServer: "native",
      storage: {
        kind: "disk",
        dir: resolve("homekv-data"),
        engine: { kind: "memory" },
        fsync: "always",
        walSegmentBytesMax: 64 * 1024 * 1024,
        checkpointWalBytes: 256 * 1024 * 1024,
      },
      history: { revisions: 10_000, durationMs: undefined },
      limits: { ...DEFAULT_LIMITS },
      tls: undefined,
      auth: undefined,
      connectionIdleTimeoutMs: 300_000,
      cluster: { nodeId: hostname().split(".")[0]!, clusterId: "homekv", gossip: undefined, raft: undefined },
    });
  });

  test("a flag beats the environment, which beats the file", () => {
    const toml = "port = 1000\nmax-key-bytes = 10\n";
    const env = { HOMEKV_PORT: "2000", HOMEKV_MAX_KEY_BYTES: "20" };
    const flags = { port: "3000", "max-key-bytes": "30" };
    expect(config({ flags, env, toml })).toMatchObject({ port: 3000, limits: { keyBytesMax: 30 } });
    expect(config({ env, toml })).toMatchObject({ port: 2000, limits: { keyBytesMax: 20 } });
    expect(config({ toml })).toMatchObject({ port: 1000, limits: { keyBytesMax: 10 } });
  });

  test("data-dir and in-memory: the one given at the higher level wins; both at one level is a mistake", () => {
    expect(config({ flags: { "in-memory": true } }).storage).toEqual({ kind: "memory" });
    expect(config({ env: { HOMEKV_IN_MEMORY: "1" } }).storage).toEqual({ kind: "memory" });
    expect(config({ flags: { "data-dir": "/tmp/d" }, toml: "in-memory = true" }).storage).toMatchObject({
      kind: "disk",
      dir: "/tmp/d",
    });
    expect(config({ flags: { "in-memory": true }, env: { HOMEKV_DATA_DIR: "/tmp/d" } }).storage).toEqual({
      kind: "memory",
    });
    expect(usageError({ flags: { "in-memory": true, "data-dir": "/tmp/d" } })).toBe(
      "in-memory (--in-memory) and data-dir (--data-dir) exclude each other",
    );
    expect(config({ flags: { "data-dir": "rel", fsync: "never" } }).storage).toMatchObject({
      dir: resolve("rel"),
      fsync: "never",
    });
  });

  test("engine: memory by default; flsm with its sizes, written in bytes or with a binary unit", () => {
    expect(config({ flags: { engine: "flsm" } }).storage).toMatchObject({
      kind: "disk",
      engine: { kind: "flsm", memtableBytes: 64 * 2 ** 20, blockCacheBytes: 256 * 2 ** 20, compression: "zstd" },
    });
    expect(config({ flags: { engine: "flsm", "table-compression": "none" } }).storage).toMatchObject({
      engine: { kind: "flsm", compression: "none" },
    });
    expect(
      config({ flags: { engine: "flsm", "memtable-bytes": "64KiB" }, env: { HOMEKV_BLOCK_CACHE_BYTES: "1.5GiB" } })
        .storage,
    ).toMatchObject({ engine: { kind: "flsm", memtableBytes: 65_536, blockCacheBytes: 1.5 * 2 ** 30 } });
    expect(config({ toml: 'engine = "flsm"\nmemtable-bytes = 8192\nblock-cache-bytes = "0"\n' }).storage).toMatchObject(
      { engine: { kind: "flsm", memtableBytes: 8192, blockCacheBytes: 0 } },
    );
    // The sizes are taken with either engine (a config file may hold them for a later switch).
    expect(config({ flags: { "memtable-bytes": "1MiB" } }).storage).toMatchObject({ engine: { kind: "memory" } });
    // Every byte setting takes the same syntax.
    expect(config({ flags: { "wal-segment-bytes": "16MiB", "max-value-bytes": "1KiB" } })).toMatchObject({
      storage: { walSegmentBytesMax: 16 * 2 ** 20 },
      limits: { valueBytesMax: 1024 },
    });
    expect(usageError({ flags: { engine: "leveldb" } })).toBe('--engine must be one of memory, flsm, not "leveldb"');
    expect(usageError({ flags: { "table-compression": "lz4" } })).toBe(
      '--table-compression must be one of zstd, none, not "lz4"',
    );
    expect(usageError({ flags: { "memtable-bytes": "64MB" } })).toBe(
      '--memtable-bytes must be a whole number of bytes from 4KiB to 1TiB, or a size like 64KiB or 256MiB, not "64MB"',
    );
    expect(usageError({ flags: { "memtable-bytes": "1KiB" } })).toStartWith("--memtable-bytes must be a whole number");
    expect(usageError({ flags: { "block-cache-bytes": "0.5" } })).toStartWith("--block-cache-bytes must be");
    expect(usageError({ toml: "memtable-bytes = 1.5\n" })).toBe(
      "homekv.toml:1: memtable-bytes must be an integer or a string, not a float",
    );
  });

  test("engine flsm and in-memory exclude each other: the higher level wins, as with data-dir", () => {
    expect(config({ flags: { engine: "flsm" }, env: { HOMEKV_IN_MEMORY: "1" } }).storage).toMatchObject({
      kind: "disk",
      engine: { kind: "flsm" },
    });
    expect(config({ flags: { "in-memory": true }, env: { HOMEKV_ENGINE: "flsm" } }).storage).toEqual({
      kind: "memory",
    });
    expect(usageError({ flags: { engine: "flsm", "in-memory": true } })).toBe(
      "in-memory (--in-memory) and engine (--engine) exclude each other: the flsm engine keeps its tables on disk",
    );
    expect(config({ flags: { engine: "memory", "in-memory": true } }).storage).toEqual({ kind: "memory" });
  });

  test("history: a duration alone lifts the count; both given, both apply", () => {
    expect(config({ flags: { "history-duration": "5m" } }).history).toEqual({
      revisions: Infinity,
      durationMs: 300_000,
    });
    expect(config({ flags: { "history-duration": "5m", "history-revisions": "7" } }).history).toEqual({
      revisions: 7,
      durationMs: 300_000,
    });
    expect(config({ flags: { "history-revisions": "0" } }).history).toEqual({ revisions: 0, durationMs: undefined });
  });

  test("cluster: gossip only with a gossip port; join addresses trimmed; ids checked", () => {
    expect(config({ flags: { "gossip-port": "0", join: " 127.0.0.1:7001, ,127.0.0.1:7002 " } }).cluster).toEqual({
      nodeId: hostname().split(".")[0]!,
      clusterId: "homekv",
      raft: undefined,
      gossip: {
        port: 0,
        join: ["127.0.0.1:7001", "127.0.0.1:7002"],
        intervalMs: GOSSIP_DEFAULTS.intervalMs,
        phiThreshold: GOSSIP_DEFAULTS.phiThreshold,
      },
    });
    expect(usageError({ flags: { join: "127.0.0.1:7001" } })).toBe("join needs gossip-port: a node gossips to join");
    expect(usageError({ flags: { "node-id": "-x" } })).toStartWith("node-id must be 1 to 64 letters");
    expect(usageError({ env: { HOMEKV_CLUSTER_ID: "a b" } })).toStartWith("cluster-id must be 1 to 64 letters");
  });

  test("replicated: initial-cluster and peer-port together, this member named, names unique", () => {
    const cluster = "n1=127.0.0.1:7001, n2=127.0.0.1:7002,n3=127.0.0.1:7003";
    const flags = { "node-id": "n2", "peer-port": "7002", "initial-cluster": cluster };
    expect(config({ flags, env: { HOMEKV_CLUSTER_TOKEN: "s" } }).cluster.raft).toEqual({
      peerPort: 7002,
      founding: {
        kind: "static",
        members: [
          { name: "n1", address: "127.0.0.1:7001" },
          { name: "n2", address: "127.0.0.1:7002" },
          { name: "n3", address: "127.0.0.1:7003" },
        ],
        initialState: "new",
      },
      voters: 3,
      token: "s",
      tickMs: 100,
      logTailEntries: 5_000,
      checkpointEntries: 100_000,
      deadServerAfterMs: 300_000,
      partitions: undefined,
    });
    expect(config({ flags: { ...flags, partitions: "16", replicas: "2" } }).cluster.raft?.partitions).toEqual({
      count: 16,
      replicas: 2,
    });
    expect(config({ flags: { ...flags, partitions: "1" } }).cluster.raft?.partitions).toBeUndefined();
    expect(usageError({ flags: { ...flags, partitions: "0" } })).toMatch(/partitions/);
    const joining = { ...flags, "initial-cluster-state": "existing", voters: "5" };
    expect(config({ flags: joining }).cluster.raft).toMatchObject({
      founding: { initialState: "existing" },
      voters: 5,
    });
    expect(usageError({ flags: { ...flags, "initial-cluster-state": "old" } })).toMatch(/must be one of new, existing/);
    expect(usageError({ flags: { ...flags, voters: "8" } })).toMatch(/voters/);
    expect(() => config({ flags: { "node-id": "n2", "initial-cluster": cluster } })).toThrow("needs peer-port");
    expect(() => config({ flags: { ...flags, "node-id": "n9" } })).toThrow("does not name this member");
    expect(() => config({ flags: { ...flags, "initial-cluster": "n2=127.0.0.1:1,n2=127.0.0.1:2" } })).toThrow(
      "names a member twice",
    );
    expect(() => config({ flags: { ...flags, "initial-cluster": "n2@127.0.0.1:1" } })).toThrow("NAME=HOST:PEERPORT");
  });

  test("zero-config: bootstrap-expect with peer-port and gossip-port, not with initial-cluster; autopilot's settings", () => {
    const flags = { "node-id": "n2", "peer-port": "7002", "gossip-port": "0", "bootstrap-expect": "3" };
    expect(config({ flags }).cluster.raft).toMatchObject({
      peerPort: 7002,
      founding: { kind: "gossip", expect: 3 },
      deadServerAfterMs: 300_000,
    });
    expect(config({ flags: { ...flags, "dead-server-after": "2s" } }).cluster.raft?.deadServerAfterMs).toBe(2_000);
    expect(config({ flags: { ...flags, autopilot: false } }).cluster.raft?.deadServerAfterMs).toBeUndefined();
    expect(() => config({ flags: { ...flags, "gossip-port": undefined } })).toThrow(
      "bootstrap-expect needs gossip-port",
    );
    expect(() => config({ flags: { ...flags, "peer-port": undefined } })).toThrow("needs peer-port");
    expect(() => config({ flags: { ...flags, "initial-cluster": "n2=127.0.0.1:7002" } })).toThrow("exclude each other");
    expect(usageError({ flags: { ...flags, "bootstrap-expect": "8" } })).toMatch(/bootstrap-expect/);
  });

  test("TLS files go in pairs; tokens from the environment; a missing auth file is a config error", () => {
    expect(usageError({ flags: { "tls-key": "k.pem" } })).toBe("tls-cert and tls-key go together");
    expect(usageError({ flags: { "tls-client-ca": "ca.pem" } })).toBe(
      "tls-client-ca needs tls-cert and tls-key: mutual TLS is TLS first",
    );
    expect(config({ env: { HOMEKV_AUTH_TOKENS: "t1:read,t2:admin" } }).auth?.entries).toHaveLength(2);
    expect(() => config({ flags: { "auth-file": "/nonexistent/tokens" } })).toThrow(HomeKvError);
  });

  test("the HTTP port and the idle timeout", () => {
    expect(config({ flags: { "http-port": "0", "connection-idle-timeout": "30s" } })).toMatchObject({
      httpPort: 0,
      connectionIdleTimeoutMs: 30_000,
    });
  });
});
