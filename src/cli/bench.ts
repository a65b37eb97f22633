import { status as Status } from "@grpc/grpc-js";
import { defineCommand } from "citty";
import { SingleBar } from "cli-progress";
import { connectH2Pool } from "../bench/h2-unary.ts";
import { formatBenchReport } from "../bench/report.ts";
import { runBench } from "../bench/run-bench.ts";
import { BENCH_OPS, createWorkload, homekvProtocol, prefillRequests } from "../bench/workload.ts";
import { HomeKvError } from "../errors.ts";
import { connectionArgs, resolveEndpoints, resolveTls, resolveToken } from "./connection.ts";
import { parseDuration } from "./duration.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

const PREFILL_KEYS_PER_REQUEST = 1_000;

export const benchCommand = defineCommand({
  meta: {
    name: "bench",
    description: "Load a running server and report throughput and latency (like redis-benchmark)",
  },
  args: {
    ...connectionArgs,
    op: { type: "enum", options: [...BENCH_OPS], default: "set", description: "What each request does" },
    concurrency: { type: "string", alias: "c", description: "Requests in flight at once (default 16)" },
    requests: { type: "string", alias: "n", description: "Requests to send (default 10000 unless --duration)" },
    duration: { type: "string", description: "Run this long instead, e.g. 10s (with -n: whichever ends first)" },
    warmup: { type: "string", description: "Send requests this long first without counting them, e.g. 2s (default 0)" },
    keys: { type: "string", description: "Keyspace size, keys drawn uniformly (default 100000)" },
    "value-size": { type: "string", description: "Value bytes (default 100)" },
    batch: { type: "string", description: "Keys per request (default 1)" },
    connections: { type: "string", description: "HTTP/2 connections to spread requests over (default 1)" },
    ratio: { type: "string", description: "mixed: share of gets, 0..1 (default 0.9)" },
    seed: { type: "string", description: "PRNG seed for the key choice (default 1)" },
    rate: {
      type: "string",
      description: "Open loop: start this many requests per second (latency counted from when each was due)",
    },
    prefill: {
      type: "boolean",
      description: "Write every key first, so gets find values (default: on for get and mixed)",
    },
  },
  async run({ args }) {
    const op = args.op;
    const durationMs = args.duration === undefined ? undefined : parseDuration("--duration", args.duration);
    const warmupMs =
      args.warmup === undefined || Number(args.warmup) === 0 ? 0 : parseDuration("--warmup", args.warmup);
    const requests =
      args.requests === undefined && durationMs !== undefined
        ? undefined
        : parseIntegerFlag("-n", args.requests, 10_000, 1, 1e12);
    const concurrency = parseIntegerFlag("-c", args.concurrency, 16, 1, 100_000);
    const keys = parseIntegerFlag("--keys", args.keys, 100_000, 1, 1e9);
    const valueSize = parseIntegerFlag("--value-size", args["value-size"], 100, 0, 64 * 1024 * 1024);
    const batch = parseIntegerFlag("--batch", args.batch, 1, 1, 1_000_000);
    if (batch > keys)
      throw new UsageError(`--batch ${batch} is more than --keys ${keys}: a request cannot name a key twice`);
    const connections = parseIntegerFlag("--connections", args.connections, 1, 1, 1_000);
    const seed = parseIntegerFlag("--seed", args.seed, 1, 0, 2 ** 32 - 1);
    const ratePerSecond = args.rate === undefined ? undefined : parseIntegerFlag("--rate", args.rate, 0, 1, 10_000_000);
    const readRatio = args.ratio === undefined ? 0.9 : Number(args.ratio);
    if (!(readRatio >= 0 && readRatio <= 1))
      throw new UsageError(`--ratio must be a number from 0 to 1, not ${JSON.stringify(args.ratio)}`);

    const endpoints = resolveEndpoints(args);
    if (endpoints.length > 1) throw new UsageError("bench loads one server: give it one endpoint, not several");
    const address = endpoints[0]!;
    const token = resolveToken(args);
    const tls = resolveTls(args);
    const pool = connectH2Pool(address, connections, { ...(tls ? { tls } : {}), ...(token ? { token } : {}) });
    try {
      const probe = homekvProtocol.get([]);
      const reached = await pool.call(probe.path, probe.message);
      // -1: no gRPC status came back at all; any other code is the server's refusal (a token, say).
      if (reached.status === -1)
        throw new HomeKvError("E_UNREACHABLE", `cannot reach HomeKV at ${address}: ${reached.message}`);
      if (reached.status !== 0)
        throw new HomeKvError(
          "E_UNAVAILABLE",
          `server refused: ${Status[reached.status] ?? reached.status}: ${reached.message}`,
        );
      if (args.prefill ?? (op === "get" || op === "mixed")) {
        for (const { path, message } of prefillRequests({ keys, valueSize }, PREFILL_KEYS_PER_REQUEST)) {
          const result = await pool.call(path, message);
          if (result.status !== 0)
            throw new HomeKvError("E_UNAVAILABLE", `prefill failed at ${address}: ${result.message}`);
        }
      }
      const bar =
        process.stderr.isTTY && !args.json
          ? new SingleBar({ format: "bench [{bar}] {value}/{total} requests {eta}s left", etaBuffer: 50 })
          : undefined;
      bar?.start(requests ?? Math.round(((durationMs ?? 0) + warmupMs) / 100), 0);
      const started = performance.now();
      const result = await runBench({
        pool,
        next: createWorkload({ op, keys, valueSize, batch, readRatio, seed }),
        concurrency,
        requests,
        durationMs,
        warmupMs,
        ratePerSecond,
        onProgress: bar && ((done) => bar.update(requests ? done : Math.round((performance.now() - started) / 100))),
      });
      bar?.stop();
      const settings = {
        op,
        concurrency,
        connections,
        keys,
        valueSize,
        batch,
        ...(op === "mixed" ? { readRatio } : {}),
        ...(ratePerSecond ? { ratePerSecond } : {}),
      };
      if (args.json) console.log(JSON.stringify({ settings, ...result }));
      else {
        const title = `homekv bench ${op}: ${concurrency} in flight over ${connections} connection(s), ${batch} key(s) per request, ${valueSize}-byte values, ${keys} keys`;
        console.log(formatBenchReport(title, result));
      }
    } finally {
      pool.close();
    }
  },
});
