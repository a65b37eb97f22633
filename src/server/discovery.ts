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
import { status as Status } from "@grpc/grpc-js";
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
import {
  bidi,
  type MessageSink,
  type MethodDefinition,
  type RpcService,
  StatusError,
  serverStream,
  unary,
} from "./call.ts";

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
  /** Health and reflection (v1 and v1alpha), for the transport to serve. */
  readonly services: readonly RpcService[];
  /** Sets the status of the whole server ("") and of the HomeKV service. */
  setStatus(status: ServingStatus): void;
  /** Ends the open health Watch streams (they never end by themselves, so a graceful shutdown would wait on them). */
  close(): void;
}

type HealthRequest = { service: string };
type HealthResponse = { status: string };

/** grpc.health.v1.Health (NOT_SERVING until `setStatus("SERVING")`) and server reflection. */
export function discoveryServices(): Discovery {
  const loaded = loadedDefinition();
  const definitionOf = (name: string) => loaded[name] as ServiceDefinition as Record<string, MethodDefinition>;
  const statuses = new Map<string, ServingStatus>([
    ["", "NOT_SERVING"],
    [HOMEKV_SERVICE_NAME, "NOT_SERVING"],
  ]);
  /** Each open health Watch stream, and the service it watches. */
  const watchers = new Map<MessageSink<HealthResponse>, string>();
  const health: RpcService = {
    definition: definitionOf(HEALTH_SERVICE_NAME),
    handlers: {
      Check: unary<HealthRequest, HealthResponse>(({ service }) => {
        const status = statuses.get(service);
        if (status) return { status };
        throw new StatusError({
          code: Status.NOT_FOUND,
          details: `health status unknown for service ${JSON.stringify(service)}`,
        });
      }),
      Watch: serverStream<HealthRequest, HealthResponse>(({ service }, call, sink) => {
        watchers.set(sink, service);
        call.onCancel(() => watchers.delete(sink));
        sink.write({ status: statuses.get(service) ?? "SERVICE_UNKNOWN" });
      }),
      List: unary<unknown, { statuses: Record<string, HealthResponse> }>(() => ({
        statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])),
      })),
    },
  };

  const reflection = new ReflectionV1Implementation(reflectedDefinition(loaded));
  type ReflectionRequest = Parameters<typeof reflection.handleServerReflectionRequest>[0];
  const reflectionHandlers = {
    ServerReflectionInfo: bidi<ReflectionRequest, unknown>((_call, sink) => ({
      message: (request) => sink.write(reflection.handleServerReflectionRequest(request)),
      end: () => sink.end({ code: Status.OK, details: "" }),
    })),
  };

  return {
    services: [
      health,
      { definition: definitionOf(REFLECTION_V1), handlers: reflectionHandlers },
      { definition: definitionOf(REFLECTION_V1ALPHA), handlers: reflectionHandlers },
    ],
    setStatus(status) {
      for (const name of statuses.keys()) statuses.set(name, status);
      for (const [sink, service] of watchers) {
        const current = statuses.get(service);
        if (current) sink.write({ status: current });
      }
    },
    close() {
      for (const sink of watchers.keys()) sink.end({ code: Status.OK, details: "" });
      watchers.clear();
    },
  };
}
