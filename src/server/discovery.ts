/**
 * What stock gRPC tools need to find their way around a HomeKV server without the .proto:
 * the standard health service (grpc.health.v1.Health, as grpc_health_probe and load balancers ask)
 * and server reflection (grpc.reflection.v1 and v1alpha, as grpcurl and grpcui ask).
 *
 * Every schema involved is embedded as text at build time (Bun's text imports), never read from disk
 * at run time: the compiled binary has no .proto beside it. That is also why the two packages are
 * used the way they are: `grpc-health-check` loads its .proto from disk when imported, so only its
 * .proto text is taken from it and the (small) service is implemented here; `@grpc/reflection`'s
 * `addToServer` loads its .proto from disk too, so its reflection engine is used and the service
 * registered here with a definition built from the embedded text.
 */
import {
  type Server,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  status as Status,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { fromJSON, type Options, type PackageDefinition, type ServiceDefinition } from "@grpc/proto-loader";
import reflectionV1Proto from "@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto" with { type: "text" };
import reflectionV1AlphaProto from "@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto" with {
  type: "text",
};
import { ReflectionV1Implementation } from "@grpc/reflection/build/src/implementations/reflection-v1";
import healthProto from "grpc-health-check/proto/health/v1/health.proto" with { type: "text" };
import { common, type Namespace, parse, type ReflectionObject, Root } from "protobufjs";
import { FileDescriptorProto, type IFileDescriptorProto } from "protobufjs/ext/descriptor";
import homekvProto from "../../api/proto/homekv_service.proto" with { type: "text" };

export const HOMEKV_SERVICE_NAME = "homekv_service.HomeKvService";
export const HEALTH_SERVICE_NAME = "grpc.health.v1.Health";
const REFLECTION_V1 = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA = "grpc.reflection.v1alpha.ServerReflection";

/** The options `@grpc/reflection` decodes its requests with (its PROTO_LOADER_OPTS): its handler relies on them. */
const REFLECTION_LOADER_OPTIONS: Options = { longs: String, enums: String, bytes: Array, defaults: true, oneofs: true };
/** The health messages as `grpc-health-check` decodes them (statuses by enum name). */
const HEALTH_LOADER_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** Well-known imports the embedded files may name; protobufjs carries their schemas. */
const WELL_KNOWN = ["google/protobuf/empty.proto"];

/** protobufjs's parser stamps what it parses with this file name (undeclared in its types). */
const parseState = parse as unknown as { filename: string | null };

/** A package definition from .proto texts given by file name, with file descriptors that name those files. */
export function packageDefinitionFromText(files: Record<string, string>, options: Options = {}): PackageDefinition {
  const root = new Root();
  for (const [name, text] of Object.entries(files)) {
    const previous = parseState.filename;
    parseState.filename = name;
    try {
      const parsed = parse(text, root, { keepCase: options.keepCase ?? false, alternateCommentMode: true });
      for (const imported of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) {
        if (!(imported in files) && !WELL_KNOWN.includes(imported))
          throw new Error(`${name} imports ${imported}, which is not embedded`);
      }
    } finally {
      parseState.filename = previous;
    }
  }
  for (const name of WELL_KNOWN) {
    const json = common.get(name);
    if (json) addWellKnown(root, name, json);
  }
  return fromJSON(root.toJSON({ keepComments: false }), options);
}

function addWellKnown(root: Root, name: string, json: NonNullable<ReturnType<typeof common.get>>): void {
  const before = new Set(allObjects(root));
  try {
    root.addJSON(json.nested ?? {});
  } catch {
    // Already there (defined by one of the files): keep theirs.
  }
  for (const object of allObjects(root)) if (!before.has(object) && !object.filename) object.filename = name;
}

function allObjects(namespace: ReflectionObject): ReflectionObject[] {
  const nested = (namespace as Namespace).nestedArray ?? [];
  return nested.flatMap((child) => [child, ...allObjects(child)]);
}

/**
 * The file descriptors a reflecting client can discover: HomeKV (and the Empty it imports), health
 * and reflection itself, as a package definition `@grpc/reflection` can index. protobufjs names
 * the descriptors it makes after their package and leaves out their imports, which stricter clients
 * (grpcurl) need to resolve a type from another file: here each is named after its .proto and lists them.
 */
export function reflectedDefinition(): PackageDefinition {
  const files: Record<string, string> = {
    "homekv_service.proto": homekvProto,
    "grpc/health/v1/health.proto": healthProto,
    "grpc/reflection/v1/reflection.proto": reflectionV1Proto,
  };
  const root = new Root();
  const fileOfPackage = new Map<string, { name: string; imports: string[] }>();
  for (const [name, text] of Object.entries(files)) {
    const previous = parseState.filename;
    parseState.filename = name;
    try {
      const parsed = parse(text, root, { alternateCommentMode: true });
      const pkg = parsed.package ?? "";
      if (fileOfPackage.has(pkg)) throw new Error(`${name}: two embedded files of package ${pkg}`);
      fileOfPackage.set(pkg, { name, imports: [...(parsed.imports ?? [])] });
    } finally {
      parseState.filename = previous;
    }
  }
  for (const name of WELL_KNOWN) {
    const json = common.get(name);
    if (json) addWellKnown(root, name, json);
    fileOfPackage.set("google.protobuf", { name, imports: [] });
  }
  root.resolveAll();
  const set = (root as unknown as { toDescriptor(syntax: string): { file: IFileDescriptorProto[] } }).toDescriptor(
    "proto3",
  );
  const fileDescriptorProtos = set.file.map((file) => {
    const source = fileOfPackage.get(file.package ?? "");
    if (!source) throw new Error(`no embedded file for package ${file.package}`);
    return Buffer.from(FileDescriptorProto.encode({ ...file, name: source.name, dependency: source.imports }).finish());
  });
  return {
    reflected: { format: "Protocol Buffer 3 FileDescriptorProto", type: {}, fileDescriptorProtos },
  } as unknown as PackageDefinition;
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
  const health = healthServiceDefinition();
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

  const reflection = new ReflectionV1Implementation(reflectedDefinition());
  const reflectionHandler = {
    ServerReflectionInfo(stream: ServerDuplexStream<unknown, unknown>) {
      stream.on("end", () => stream.end());
      stream.on("data", (message: Parameters<typeof reflection.handleServerReflectionRequest>[0]) => {
        stream.write(reflection.handleServerReflectionRequest(message));
      });
    },
  };
  const v1 = packageDefinitionFromText(
    { "grpc/reflection/v1/reflection.proto": reflectionV1Proto },
    REFLECTION_LOADER_OPTIONS,
  );
  const v1alpha = packageDefinitionFromText(
    { "grpc/reflection/v1alpha/reflection.proto": reflectionV1AlphaProto },
    REFLECTION_LOADER_OPTIONS,
  );
  server.addService(v1[REFLECTION_V1] as ServiceDefinition, reflectionHandler);
  server.addService(v1alpha[REFLECTION_V1ALPHA] as ServiceDefinition, reflectionHandler);

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

/** grpc.health.v1.Health, as grpc-health-check defines it, from its embedded .proto. */
export function healthServiceDefinition(): ServiceDefinition {
  return packageDefinitionFromText({ "grpc/health/v1/health.proto": healthProto }, HEALTH_LOADER_OPTIONS)[
    HEALTH_SERVICE_NAME
  ] as ServiceDefinition;
}
