import { beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { HomeKvClient } from "../../src/client/client.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";
import { rejection } from "../helpers/rejection.ts";
import { useServer } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import { parseExposition } from "./parse-exposition.ts";
import { healthCheck, healthClient, reflect } from "./reflection-client.ts";

const server = useServer(["--in-memory", "--http-port", "0"]);
let httpBase: string;

beforeAll(() => {
  const match = /HTTP endpoint on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.output());
  if (!match) throw new Error(`no HTTP endpoint line:\n${server.output()}`);
  httpBase = match[1]!;
});

describe("grpc.health.v1.Health", () => {
  test("reports SERVING for the server and for HomeKvService", async () => {
    expect(await healthCheck(server.address, "")).toEqual({ status: "SERVING" });
    expect(await healthCheck(server.address, "homekv_service.HomeKvService")).toEqual({ status: "SERVING" });
  });

  test("an unknown service is NOT_FOUND", async () => {
    expect(await rejection(healthCheck(server.address, "no.such.Service"))).toMatchObject({ code: 5 });
  });
});

describe("server reflection", () => {
  for (const version of ["v1", "v1alpha"] as const) {
    test(`${version} lists HomeKvService and health`, async () => {
      const [answer] = await reflect(server.address, [{ listServices: "" }], version);
      const names = answer!.listServicesResponse!.service.map((s) => s.name);
      expect(names).toContain("homekv_service.HomeKvService");
      expect(names).toContain("grpc.health.v1.Health");
    });
  }

  test("the file of HomeKvService names its import, and the import comes with it", async () => {
    const [answer] = await reflect(server.address, [{ fileContainingSymbol: "homekv_service.HomeKvService" }]);
    const files = answer!.fileDescriptorResponse!.fileDescriptorProto.map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
    const main = files.find((f) => f.name === "homekv_service.proto");
    expect(main).toBeDefined();
    expect(main!.dependency).toEqual(["google/protobuf/empty.proto"]);
    expect(main!.service[0]!.method.map((m) => m.name)).toContain("Get");
    expect(files.map((f) => f.name)).toContain("google/protobuf/empty.proto");
    const [byName] = await reflect(server.address, [{ fileByFilename: "google/protobuf/empty.proto" }]);
    expect(byName!.fileDescriptorResponse!.fileDescriptorProto).toHaveLength(1);
  });

  test("an unknown symbol is a NOT_FOUND error response", async () => {
    const [answer] = await reflect(server.address, [{ fileContainingSymbol: "no.Such" }]);
    expect(answer!.errorResponse!.errorCode).toBe(5);
  });
});

describe("HTTP endpoint", () => {
  test("/healthz and /readyz answer 200 while serving", async () => {
    const healthz = await fetch(`${httpBase}/healthz`);
    expect(healthz.status).toBe(200);
    const readyz = await fetch(`${httpBase}/readyz`);
    expect(readyz.status).toBe(200);
    expect((await fetch(`${httpBase}/nope`)).status).toBe(404);
  });

  test("/metrics is Prometheus text whose numbers match the Metrics RPC", async () => {
    const client = new HomeKvClient({ address: server.address });
    try {
      await client.set({ a: "1", b: "22", c: "333" });
      await client.del(["c"]);
      await client.get(["a"]);
      const rpc = await client.metrics();
      const response = await fetch(`${httpBase}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain; version=0.0.4");
      const exposition = parseExposition(await response.text());
      const value = (name: string, labels: Record<string, string> = {}) => exposition.value(name, labels);
      expect(rpc.keysCount).toBe(2);
      expect(value("homekv_keys")).toBe(rpc.keysCount);
      expect(value("homekv_value_bytes")).toBe(rpc.valuesSizeInBytes);
      expect(value("homekv_revision")).toBe(rpc.revision);
      expect(value("homekv_persistent")).toBe(0);
      expect(exposition.types.get("homekv_commands_served_total")).toBe("counter");
      expect(value("homekv_commands_served_total")).toBeGreaterThanOrEqual(3);
      expect(value("process_resident_memory_bytes")).toBeGreaterThan(0);
      expect(value("homekv_uptime_seconds")).toBeGreaterThan(0);
      const set = { method: "/homekv_service.HomeKvService/Set", code: "OK" };
      expect(value("homekv_grpc_requests_total", set)).toBeGreaterThanOrEqual(1);
      expect(exposition.types.get("homekv_grpc_request_duration_seconds")).toBe("histogram");
      const setCount = value("homekv_grpc_request_duration_seconds_count", { method: set.method });
      expect(value("homekv_grpc_request_duration_seconds_bucket", { method: set.method, le: "+Inf" })).toBe(setCount);
      expect(setCount).toBe(value("homekv_grpc_requests_total", set));
      // Every sample belongs to a family announced by HELP and TYPE.
      for (const sample of exposition.samples) expect(exposition.types.has(sample.family)).toBe(true);
    } finally {
      client.close();
    }
  });
});

describe("shutdown", () => {
  test("health turns NOT_SERVING on SIGTERM, and the watch ends so the server stops", async () => {
    const own = await startServerProcess(["--in-memory"]);
    const client = healthClient(own.address);
    const seen: string[] = [];
    const ended = new Promise<void>((done) => {
      const stream = client.watch!({ service: "" });
      stream.on("data", (response: { status: string }) => seen.push(response.status));
      stream.on("error", () => done());
      stream.on("end", () => done());
    });
    await waitFor(() => seen.length > 0, { what: "the health watch's first status" });
    expect(seen).toEqual(["SERVING"]);
    const started = performance.now();
    const code = await own.stop("SIGTERM");
    await ended;
    client.close();
    expect(code).toBe(0);
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    // Well within the 10 s grace: the open watch did not hold the shutdown up.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(own.output()).not.toContain("still in flight");
  });
});

describe("--http-port", () => {
  for (const bad of ["abc", "70000", "-1", ""]) {
    test(`${JSON.stringify(bad)} is a usage error`, async () => {
      const result = await runHomekv(["serve", "--in-memory", "-p", "0", "--http-port", bad]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain("--http-port");
    });
  }
});
