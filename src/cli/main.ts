import { defineCommand } from "citty";
import { VERSION } from "../version.ts";

/**
 * Each command is loaded only when it is the one called: `homekv get` then loads the client alone,
 * never the server, storage or the benchmark, which scripts calling the CLI in loops would pay for
 * on every call (test/cli/lazy-imports.test.ts holds the client commands to that).
 */
export const mainCommand = defineCommand({
  meta: {
    name: "homekv",
    version: VERSION,
    description: "HomeKV: a transactional MVCC key-value store over gRPC (server and client in one)",
  },
  subCommands: {
    serve: () => import("./serve.ts").then((module) => module.serveCommand),
    get: () => import("./get.ts").then((module) => module.getCommand),
    set: () => import("./set.ts").then((module) => module.setCommand),
    del: () => import("./del.ts").then((module) => module.delCommand),
    scan: () => import("./scan.ts").then((module) => module.scanCommand),
    txn: () => import("./txn.ts").then((module) => module.txnCommand),
    compact: () => import("./compact.ts").then((module) => module.compactCommand),
    watch: () => import("./watch.ts").then((module) => module.watchCommand),
    metrics: () => import("./metrics.ts").then((module) => module.metricsCommand),
    members: () => import("./members.ts").then((module) => module.membersCommand),
    cluster: () => import("./cluster.ts").then((module) => module.clusterCommand),
    ring: () => import("./ring.ts").then((module) => module.ringCommand),
    checkpoint: () => import("./checkpoint.ts").then((module) => module.checkpointCommand),
    backup: () => import("./backup.ts").then((module) => module.backupCommand),
    restore: () => import("./restore.ts").then((module) => module.restoreCommand),
    bench: () => import("./bench.ts").then((module) => module.benchCommand),
  },
});
