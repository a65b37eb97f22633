/** Test clients of the discovery services, built from the .proto files the packages ship (read from disk: tests run from source). */

import { resolve } from "node:path";
import { type Client, credentials, loadPackageDefinition, makeGenericClientConstructor } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { ROOT } from "../helpers/processes.ts";

const REFLECTION_PROTO_DIR = resolve(ROOT, "node_modules", "@grpc", "reflection", "build", "proto");

export function healthClient(address: string): Client & Record<string, Function> {
  const Health = makeGenericClientConstructor(healthService, "Health");
  return new Health(address, credentials.createInsecure()) as Client & Record<string, Function>;
}

export function healthCheck(address: string, service = ""): Promise<{ status: string }> {
  const client = healthClient(address);
  return new Promise((done, fail) => {
    client.check!(
      { service },
      { deadline: Date.now() + 5_000 },
      (error: Error | null, response: { status: string }) => {
        client.close();
        if (error) fail(error);
        else done(response);
      },
    );
  });
}

export interface ReflectionAnswer {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

/** Sends the requests over one ServerReflectionInfo stream (v1 or v1alpha) and collects one answer per request. */
export function reflect(
  address: string,
  requests: object[],
  version: "v1" | "v1alpha" = "v1",
): Promise<ReflectionAnswer[]> {
  const definition = loadSync(`grpc/reflection/${version}/reflection.proto`, {
    includeDirs: [REFLECTION_PROTO_DIR],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(definition) as any;
  const Reflection = pkg.grpc.reflection[version].ServerReflection;
  const client = new Reflection(address, credentials.createInsecure());
  return new Promise((done, fail) => {
    const answers: ReflectionAnswer[] = [];
    const stream = client.ServerReflectionInfo({ deadline: Date.now() + 5_000 });
    stream.on("data", (answer: ReflectionAnswer) => {
      answers.push(answer);
      if (answers.length === requests.length) stream.end();
    });
    stream.on("error", (error: Error) => {
      client.close();
      fail(error);
    });
    stream.on("end", () => {
      client.close();
      done(answers);
    });
    for (const request of requests) stream.write(request);
  });
}
