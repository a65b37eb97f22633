/**
 * Server CPU per warm unary call, for each gRPC server transport (--grpc-server native, grpc-js):
 * a `homekv serve --in-memory` answers a Get of a missing key (an almost empty handler) from the
 * benchmark's own HTTP/2 client (src/bench/h2-unary.ts), 64 calls in flight on one connection; the
 * server's user+system CPU time over the measured calls comes from /proc/PID/stat.
 *
 *   bun scripts/bench-rpc-cpu.ts [--calls 50000] [--in-flight 64]
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { GetRequest } from "../src/gen/homekv_service.ts";
import { GRPC_SERVERS, type GrpcServerKind } from "../src/server/transport.ts";
import { cpuSeconds } from "./bench/cpu.ts";

const { values } = parseArgs({
  options: { calls: { type: "string", default: "50000" }, "in-flight": { type: "string", default: "64" } },
});
const CALLS = Number(values.calls);
const IN_FLIGHT = Number(values["in-flight"]);
const WARM_UP_CALLS = 10_000;
const START_TIMEOUT_MS = 15_000;
const GET = "/homekv_service.HomeKvService/Get";
const MAIN = resolve(import.meta.dir, "..", "src", "main.ts");

async function startServer(kind: GrpcServerKind) {
  const proc = Bun.spawn(
    [process.execPath, MAIN, "serve", "--in-memory", "--host", "127.0.0.1", "-p", "0", "--grpc-server", kind],
    { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, NO_COLOR: "1" } },
  );
  const reader = proc.stdout.getReader();
  let output = "";
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    output += new TextDecoder().decode(value);
    const port = /listening on 127\.0\.0\.1:(\d+)/.exec(output)?.[1];
    if (port) {
      reader.releaseLock();
      return { proc, address: `127.0.0.1:${port}` };
    }
  }
  proc.kill("SIGKILL");
  throw new Error(
    `homekv serve --grpc-server ${kind} did not say where it listens within ${START_TIMEOUT_MS} ms:\n${output}`,
  );
}

/** `count` calls, `IN_FLIGHT` at a time; every one must be OK. */
async function run(pool: ReturnType<typeof connectH2Pool>, count: number): Promise<void> {
  const message = GetRequest.encode(GetRequest.fromPartial({ keys: ["missing"] })).finish();
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const result = await pool.call(GET, message);
      if (result.status !== 0) throw new Error(`a Get failed: status ${result.status} ${result.message}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

console.log(
  `server CPU per Get of a missing key: ${CALLS} calls after ${WARM_UP_CALLS} to warm up, ${IN_FLIGHT} in flight, one connection`,
);
for (const kind of GRPC_SERVERS) {
  const server = await startServer(kind);
  const pool = connectH2Pool(server.address, 1);
  try {
    await run(pool, WARM_UP_CALLS);
    const cpuBefore = cpuSeconds(server.proc.pid);
    const startedMs = performance.now();
    await run(pool, CALLS);
    const seconds = (performance.now() - startedMs) / 1000;
    const cpu = cpuSeconds(server.proc.pid) - cpuBefore;
    console.log(
      `${kind.padEnd(8)} ${((cpu * 1e6) / CALLS).toFixed(1).padStart(6)} µs CPU per call, ${Math.round(CALLS / seconds)} calls/s`,
    );
  } finally {
    pool.close();
    server.proc.kill("SIGTERM");
    await server.proc.exited;
  }
}
