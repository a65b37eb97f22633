/**
 * nghttp2's h2load as a second, neutral load generator for gRPC servers: it posts one pre-encoded
 * gRPC message (the 5-byte prefix and the protobuf bytes) over and over, on one HTTP/2 connection
 * with `streams` in flight. It sees HTTP statuses only, and a gRPC error travels in a 200 response's
 * trailers, so the caller must have checked that the message succeeds (`checkedOnce`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectH2Pool, type H2Pool } from "../../src/bench/h2-unary.ts";
import { grpcMessage } from "../../src/h2/grpc-message.ts";

export interface H2loadRun {
  address: string;
  path: string;
  message: Uint8Array;
  /** Requests in flight on the one connection. */
  streams: number;
  durationMs: number;
  warmupMs: number;
}

export interface H2loadResult {
  requestsPerSecond: number;
  succeeded: number;
  failed: number;
  meanLatencyMs: number;
}

/** Fails unless `message` at `path` is answered with gRPC status OK. */
export async function checkedOnce(pool: H2Pool, path: string, message: Uint8Array): Promise<void> {
  const answer = await pool.call(path, message);
  if (answer.status !== 0) throw new Error(`${path} answered status ${answer.status} (${answer.message})`);
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000 };

function parse(output: string): H2loadResult {
  const finished = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(output);
  const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(output);
  const latency = /time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\s/.exec(output);
  if (!finished || !requests || !latency) throw new Error(`h2load printed no summary:\n${output}`);
  return {
    requestsPerSecond: Number(finished[1]),
    succeeded: Number(requests[1]),
    failed: Number(requests[2]),
    meanLatencyMs: Number(latency[1]) * UNIT_MS[latency[2]!]!,
  };
}

/** Several h2load processes at once (one per target), their rates summed. */
export async function h2loadAll(runs: readonly H2loadRun[]): Promise<H2loadResult> {
  const scratch = mkdtempSync(join(tmpdir(), "bench-h2load-"));
  try {
    const results = await Promise.all(
      runs.map(async (run, i) => {
        const body = join(scratch, `body-${i}`);
        writeFileSync(body, grpcMessage(run.message));
        const proc = Bun.spawn(
          [
            "h2load",
            "-c1",
            "-t1",
            `-m${run.streams}`,
            `-D${run.durationMs}ms`,
            ...(run.warmupMs > 0 ? [`--warm-up-time=${run.warmupMs}ms`] : []),
            "-d",
            body,
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            `http://${run.address}${run.path}`,
          ],
          { stdout: "pipe", stderr: "pipe", timeout: run.durationMs + run.warmupMs + 30_000 },
        );
        const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
        if ((await proc.exited) !== 0) throw new Error(`h2load exited with ${proc.exitCode}: ${err}${out}`);
        return parse(out);
      }),
    );
    const succeeded = results.reduce((sum, result) => sum + result.succeeded, 0);
    return {
      requestsPerSecond: results.reduce((sum, result) => sum + result.requestsPerSecond, 0),
      succeeded,
      failed: results.reduce((sum, result) => sum + result.failed, 0),
      meanLatencyMs:
        results.reduce((sum, result) => sum + result.meanLatencyMs * result.succeeded, 0) / Math.max(1, succeeded),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * h2load against every address at once (one process each, `streams` split among them), once the
 * request has been checked to succeed at each: h2load itself would count a gRPC error as a success.
 */
export async function h2loadChecked(
  addresses: readonly string[],
  request: { path: string; message: Uint8Array },
  run: { streams: number; durationMs: number; warmupMs: number },
): Promise<H2loadResult> {
  const { path, message } = request;
  for (const address of addresses) {
    const pool = connectH2Pool(address, 1);
    await checkedOnce(pool, path, message).finally(() => pool.close());
  }
  const { streams, durationMs, warmupMs } = run;
  return h2loadAll(
    addresses.map((address, i) => ({
      address,
      path,
      message,
      streams: Math.floor(streams / addresses.length) + (i < streams % addresses.length ? 1 : 0),
      durationMs,
      warmupMs,
    })),
  );
}
