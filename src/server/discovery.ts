/**
 * What stock gRPC tools need to find their way around a HomeKV server without the .proto:
 * the standard health service (grpc.health.v1.Health, as grpc_health_probe and load balancers ask)
 * and server reflection (grpc.reflection.v1 and v1alpha, as grpcurl and grpcui ask).
 *
 * Every schema involved comes from one descriptor set that buf builds from HomeKV's .proto and the
 * .proto files grpc-health-check and @grpc/reflection ship (scripts/gen-proto.ts), embedded as
 * generated code: the compiled binary reads no .proto at run time. That is also why the two
 * packages are used the way they are: `grpc-health-check` loads its .proto from disk when imported,
 * so the (small) service is implemented here; `@grpc/reflection`'s `addToServer` loads its .proto
 * from disk too, so its reflection engine is used and the service registered here.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type DescriptorProto, FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import {
  type Server,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  status as Status,
  type sendUnaryData,
} from "@grpc/grpc-js";
import {
  loadFileDescriptorSetFromBuffer,
  type Options,
  type PackageDefinition,
  type ServiceDefinition,
} from "@grpc/proto-loader";
// A private path: the package exports only ReflectionService, whose addToServer reads its .proto
// from disk. It may move in any release, so package.json pins @grpc/reflection to an exact version.
import { ReflectionV1Implementation } from "@grpc/reflection/build/src/implementations/reflection-v1";
import { descriptorSet } from "../gen/descriptor-set.ts";

export const HOMEKV_SERVICE_NAME = "homekv_service.HomeKvService";
export const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";
const REFLECTION_V1 = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection";

/**
 * The options `@grpc/reflection` decodes its requests with (its PROTO_LOADER_OPTS): its handler
 * relies on them. The health messages decode the same way (statuses by enum name).
 */
const LOADER_OPTIONS: Options = { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true };

/**
 * The messages with the camelCase field and oneof names `@grpc/reflection`'s handler reads and
 * writes (`messageRequest`, `fileByFilename`). proto-loader's `keepCase: false` would give them, but
 * a descriptor set is loaded with the names as written whatever the options say (grpc/grpc-node issue 846);
 * the wire, which knows fields by number, is the same.
 */
function withCamelCaseNames(messages: DescriptorProto[]): void {
  for (const message of messages) {
    for (const field of message.field) field.name = field.jsonName;
    for (const oneof of message.oneofDecl)
      oneof.name = oneof.name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    withCamelCaseNames(message.nestedType);
  }
}

/** The health and reflection services as grpc-js serves them (HomeKV's own has its generated codecs). */
function loadedDefinition(): PackageDefinition {
  const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
  set.file = set.file.filter((file) => file.package.startsWith("grpc."));
  for (const file of set.file) withCamelCaseNames(file.messageType);
  return loadFileDescriptorSetFromBuffer(Buffer.from(toBinary(FileDescriptorSetSchema, set)), LOADER_OPTIONS);
}

/**
 * What the reflection engine indexes: it reads only the file descriptors a definition's entries
 * carry, so each carries every embedded file (HomeKV's included) as buf built it, instead of the ones
 * proto-loader re-derives, which list no imports (stricter clients, grpcurl, need them to resolve a
 * type from another file) and have the renamed fields.
 */
function reflectedDefinition(loaded: PackageDefinition): PackageDefinition {
  const files = fromBinary(FileDescriptorSetSchema, descriptorSet).file;
  const fileDescriptorProtos = files.map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file)));
  const entries = Object.entries(loaded).map(([name, entry]) => [
    name,
    "fileDescriptorProtos" in entry ? { ...entry, fileDescriptorProtos } : entry,
  ]);
  return Object.fromEntries(entries) as PackageDefinition;
}

export type ServingStatus = "SERVING" | "NOT_SERVING";

export interface Discovery {
  /** Sets the status of the whole server ("") and of the HomeKV service. */
  setStatus(status: ServingStatus): void;
  /** Ends the open health Watch streams (they never end by themselves, so a graceful shutdown would wait on them). */
  close(): void;
}

/** Adds grpc.health.v1.Health (NOT_SERVING until `setStatus("SERVING")`) and server reflection to `server`. */
export function addDiscoveryServices(server: Pick<Server, "addService">): Discovery {
  const loaded = loadedDefinition();
  const health = loaded[HEALTH_SERVICE_NAME] as ServiceDefinition;
  const statuses = new Map<string, ServingStatus>([
    ["", "NOT_SERVING"],
    [HOMEKV_SERVICE_NAME, "NOT_SERVING"],
  ]);
  type WatchCall = ServerWritableStream<{ service: string }, { status: string }>;
  const watchers = new Set<WatchCall>();
  server.addService(health, {
    Check(call: ServerUnaryCall<{ service: string }, { status: string }>, callback: sendUnaryData<{ status: string }>) {
      const status = statuses.get(call.request.service);
      if (status) callback(null, { status });
      else
        callback({
          code: Status.NOT_FOUND,
          details: `health status unknown for service ${JSON.stringify(call.request.service)}`,
        });
    },
    Watch(call: WatchCall) {
      watchers.add(call);
      call.on("cancelled", () => watchers.delete(call));
      call.write({ status: statuses.get(call.request.service) ?? "SERVICE_UNKNOWN" });
    },
    List(
      _call: ServerUnaryCall<unknown, unknown>,
      callback: sendUnaryData<{ statuses: Record<string, { status: string }> }>,
    ) {
      callback(null, { statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])) });
    },
  });

  const reflection = new ReflectionV1Implementation(reflectedDefinition(loaded));
  const reflectionHandler = {
    ServerReflectionInfo(stream: ServerDuplexStream<unknown, unknown>) {
      stream.on("end", () => stream.end());
      stream.on("data", (message: Parameters<typeof reflection.handleServerReflectionRequest>[0]) => {
        stream.write(reflection.handleServerReflectionRequest(message));
      });
    },
  };
  server.addService(loaded[REFLECTION_V1] as ServiceDefinition, reflectionHandler);
  server.addService(loaded[REFLECTION_V1ALPHA] as ServiceDefinition, reflectionHandler);

  return {
    setStatus(status) {
      for (const name of statuses.keys()) statuses.set(name, status);
      for (const call of watchers) {
        const current = statuses.get(call.request.service);
        if (current) call.write({ status: current });
      }
    },
    close() {
      for (const call of watchers) call.end();
      watchers.clear();
    },
  };
}
