import { defineCommand } from "citty";
import { VERSION } from "../version.ts";
import { benchCommand } from "./bench.ts";
import { checkpointCommand } from "./checkpoint.ts";
import { compactCommand } from "./compact.ts";
import { delCommand } from "./del.ts";
import { getCommand } from "./get.ts";
import { membersCommand } from "./members.ts";
import { metricsCommand } from "./metrics.ts";
import { scanCommand } from "./scan.ts";
import { serveCommand } from "./serve.ts";
import { setCommand } from "./set.ts";
import { txnCommand } from "./txn.ts";
import { watchCommand } from "./watch.ts";

export const mainCommand = defineCommand({
  meta: {
    name: "homekv",
    version: VERSION,
    description: "HomeKV: a transactional MVCC key-value store over gRPC (server and client in one)",
  },
  subCommands: {
    serve: serveCommand,
    get: getCommand,
    set: setCommand,
    del: delCommand,
    scan: scanCommand,
    txn: txnCommand,
    compact: compactCommand,
    watch: watchCommand,
    metrics: metricsCommand,
    members: membersCommand,
    checkpoint: checkpointCommand,
    bench: benchCommand,
  },
});
