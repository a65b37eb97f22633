import { expect, test } from "bun:test";
import { createGossiper, type GossipCounters, type Member, type MemberStatus } from "../../src/cluster/gossip/index.ts";
import { Metrics } from "../../src/gen/homekv_service.ts";
import { handleHttp } from "../../src/server/http-endpoint.ts";
import { soloView } from "../../src/server/members.ts";
import {
  clusterFamilies,
  escapeLabelValue,
  formatExposition,
  raftFamilies,
  rpcFamilies,
  storeFamilies,
} from "../../src/server/prometheus.ts";
import { createRpcStats, recordCall } from "../../src/server/rpc-stats.ts";
import { parseExposition } from "../discovery/parse-exposition.ts";

test("formats HELP, TYPE and samples, escaping label values and help", () => {
  const text = formatExposition([
    {
      name: "x_total",
      help: "a\\b\nc",
      type: "counter",
      samples: [{ value: 3 }, { labels: { k: 'q"\\\n' }, value: Infinity }],
    },
  ]);
  expect(text).toBe('# HELP x_total a\\\\b\\nc\n# TYPE x_total counter\nx_total 3\nx_total{k="q\\"\\\\\\n"} +Inf\n');
  expect(parseExposition(text).value("x_total", { k: 'q"\\\n' })).toBe(Infinity);
  expect(escapeLabelValue("plain")).toBe("plain");
  expect(() => formatExposition([{ name: "bad-name", help: "", type: "gauge", samples: [] }])).toThrow();
});

test("latency histograms are cumulative and end with +Inf = count", () => {
  const stats = createRpcStats();
  recordCall(stats, "/s/M", 0, 0.0001);
  recordCall(stats, "/s/M", 0, 0.003);
  recordCall(stats, "/s/M", 5, 99);
  const parsed = parseExposition(formatExposition(rpcFamilies(stats)));
  expect(parsed.value("homekv_grpc_requests_total", { method: "/s/M", code: "OK" })).toBe(2);
  expect(parsed.value("homekv_grpc_requests_total", { method: "/s/M", code: "NOT_FOUND" })).toBe(1);
  expect(parsed.value("homekv_grpc_request_duration_seconds_bucket", { method: "/s/M", le: "0.0005" })).toBe(1);
  expect(parsed.value("homekv_grpc_request_duration_seconds_bucket", { method: "/s/M", le: "0.005" })).toBe(2);
  expect(parsed.value("homekv_grpc_request_duration_seconds_bucket", { method: "/s/M", le: "10" })).toBe(2);
  expect(parsed.value("homekv_grpc_request_duration_seconds_bucket", { method: "/s/M", le: "+Inf" })).toBe(3);
  expect(parsed.value("homekv_grpc_request_duration_seconds_count", { method: "/s/M" })).toBe(3);
  expect(parsed.value("homekv_grpc_request_duration_seconds_sum", { method: "/s/M" })).toBeCloseTo(99.0031, 6);
});

test("store families map every Metrics field they name, in seconds where the RPC says ms", () => {
  const m = {
    ...Metrics.fromPartial({}),
    keysCount: 7,
    recoveryMs: 1500,
    lastCheckpointUnixMs: 2000,
    persistent: true,
    walFsyncs: 4,
    storageEngine: "flsm",
    memtableBytes: 65_536,
    frozenMemtables: 3,
    memtableFlushes: 9,
  };
  const parsed = parseExposition(formatExposition(storeFamilies(m)));
  expect(parsed.value("homekv_storage_engine", { engine: "flsm" })).toBe(1);
  expect(parsed.value("homekv_memtable_bytes")).toBe(65_536);
  expect(parsed.value("homekv_frozen_memtables")).toBe(3);
  expect(parsed.value("homekv_memtable_flushes_total")).toBe(9);
  expect(parsed.value("homekv_keys")).toBe(7);
  expect(parsed.value("homekv_recovery_seconds")).toBe(1.5);
  expect(parsed.value("homekv_last_checkpoint_timestamp_seconds")).toBe(2);
  expect(parsed.value("homekv_persistent")).toBe(1);
  expect(parsed.value("homekv_wal_fsyncs_total")).toBe(4);
});

test("/readyz is 503 once the server stops serving; /healthz stays 200", async () => {
  const membership = soloView("homekv", "n1", "127.0.0.1:1", 0);
  const source = {
    metrics: () => Metrics.fromPartial({}),
    rpcStats: createRpcStats(),
    serving: true,
    membership,
    db: { stats: () => ({}) },
  };
  const get = (path: string) => handleHttp(new Request(`http://127.0.0.1${path}`), source);
  expect(get("/readyz").status).toBe(200);
  source.serving = false;
  expect(get("/readyz").status).toBe(503);
  expect(get("/healthz").status).toBe(200);
  expect(handleHttp(new Request("http://127.0.0.1/metrics", { method: "POST" }), source).status).toBe(405);
  const exposition = parseExposition(await get("/metrics").text());
  expect(exposition.value("homekv_keys")).toBe(0);
  expect(exposition.value("homekv_cluster_members", { status: "alive" })).toBe(1);
});

test("cluster families: members by status, each peer's phi, gossip traffic and drops by reason", () => {
  const member = (nodeId: string, status: MemberStatus, phi: number, isSelf = false): Member => ({
    nodeId,
    grpcAddress: "",
    gossipAddress: "",
    status,
    phi,
    heartbeat: 1,
    generation: 1,
    lastSeenMs: 0,
    isSelf,
    metadata: {},
  });
  const members = [
    member("a", "alive", 0, true),
    member("b", "alive", 0.5),
    member("c", "dead", 9.25),
    member("d", "left", 0),
  ];
  // A real gossiper's counters, so that the reasons are the ones it counts.
  const counters: GossipCounters = createGossiper({
    clusterId: "c",
    nodeId: "a",
    generation: 1,
    gossipAddress: "127.0.0.1:1",
    grpcAddress: "127.0.0.1:2",
    random: () => 0.5,
    nowMs: 0,
  }).counters();
  counters.datagramsSent = 10;
  counters.datagramsReceived = 7;
  counters.datagramsDropped["foreign-cluster"] = 3;
  const parsed = parseExposition(formatExposition(clusterFamilies(members, counters)));
  expect(
    ["alive", "suspect", "dead", "left"].map((status) => parsed.value("homekv_cluster_members", { status })),
  ).toEqual([2, 0, 1, 1]);
  expect(parsed.value("homekv_cluster_peer_phi", { node: "c" })).toBe(9.25);
  expect(parsed.value("homekv_gossip_datagrams_total", { direction: "received" })).toBe(7);
  expect(parsed.value("homekv_gossip_datagrams_dropped_total", { reason: "foreign-cluster" })).toBe(3);
});

test("Raft families only for a replicated member: term, leadership, indexes and proposal counters", () => {
  expect(raftFamilies(Metrics.fromPartial({}))).toEqual([]);
  const text = formatExposition(
    raftFamilies(
      Metrics.fromPartial({
        replicated: true,
        raftRole: "leader",
        raftTerm: 4,
        raftLeader: "n2",
        raftCommitIndex: 17,
        raftAppliedIndex: 16,
        raftProposalsCommitted: 9,
        raftProposalsDropped: 1,
        raftLeaderChanges: 2,
      }),
    ),
  );
  const parsed = parseExposition(text);
  expect(parsed.value("homekv_raft_term")).toBe(4);
  expect(parsed.value("homekv_raft_is_leader")).toBe(1);
  expect(parsed.value("homekv_raft_has_leader")).toBe(1);
  expect(parsed.value("homekv_raft_commit_index")).toBe(17);
  expect(parsed.value("homekv_raft_applied_index")).toBe(16);
  expect(parsed.value("homekv_raft_proposals_committed_total")).toBe(9);
  expect(parsed.value("homekv_raft_proposals_dropped_total")).toBe(1);
  expect(parsed.value("homekv_raft_leader_changes_total")).toBe(2);
});
