/**
 * redis-benchmark as the reference for protocol overhead: the same key space and value size,
 * keys `bench/<12 digits>` drawn uniformly by redis-benchmark's own __rand_int__.
 */
export interface RedisResult {
  requestsPerSecond: number;
  p99Ms: number;
}

export function redisBenchmark(options: {
  port: number;
  concurrency: number;
  requests: number;
  keys: number;
  valueSize: number;
  command: "get" | "set" | "mset100";
}): RedisResult {
  const value = "x".repeat(options.valueSize);
  const command =
    options.command === "get"
      ? ["GET", "bench/__rand_int__"]
      : options.command === "set"
        ? ["SET", "bench/__rand_int__", value]
        : ["MSET", ...Array.from({ length: 100 }, () => ["bench/__rand_int__", value]).flat()];
  const result = Bun.spawnSync(
    [
      "redis-benchmark",
      "-h",
      "127.0.0.1",
      "-p",
      String(options.port),
      "-c",
      String(options.concurrency),
      "-n",
      String(options.requests),
      "-r",
      String(options.keys),
      "--csv",
      ...command,
    ],
    { stdout: "pipe", stderr: "pipe", timeout: 600_000 },
  );
  if (result.exitCode !== 0) throw new Error(`redis-benchmark failed: ${result.stderr.toString()}`);
  // CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  const row = result.stdout
    .toString()
    .trim()
    .split("\n")
    .at(-1)!
    .split(",")
    .map((cell) => cell.replaceAll('"', ""));
  return { requestsPerSecond: Number(row[1]), p99Ms: Number(row[6]) };
}

/** Loads keys bench/000000000000.. with values of `valueSize` bytes, exactly, through redis-cli --pipe. */
export function redisPrefill(port: number, keys: number, valueSize: number): void {
  const value = "x".repeat(valueSize);
  let resp = "";
  for (let i = 0; i < keys; i++) {
    const key = `bench/${String(i).padStart(12, "0")}`;
    resp += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
  }
  const result = Bun.spawnSync(["redis-cli", "-p", String(port), "--pipe"], {
    stdin: new TextEncoder().encode(resp),
    stdout: "pipe",
    stderr: "pipe",
  });
  if (result.exitCode !== 0) throw new Error(`redis-cli --pipe failed: ${result.stderr.toString()}`);
}
