import { constants as http2Constants, type ServerHttp2Stream } from "node:http2";
import {
  Metadata,
  Server,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { formatAddress } from "../address.ts";
import { HomeKvError } from "../errors.ts";
import { authInterceptor } from "./auth.ts";
import type { CallContext, CallStatus, Handler, MessageSink } from "./call.ts";
import { widenReceiveWindows } from "./flow-control.ts";
import { hardCapBytes } from "./request-size.ts";
import { rpcStatsInterceptor } from "./rpc-stats.ts";
import { toStatus } from "./status.ts";
import { serverCredentials } from "./tls.ts";
import type { Transport, TransportOptions } from "./transport.ts";

/** The services served by grpc-js over Bun's node:http2 (`--grpc-server grpc-js`). */
export async function startGrpcJsTransport(options: TransportOptions): Promise<Transport> {
  const { limits } = options;
  const server = new Server({
    "grpc.max_receive_message_length": hardCapBytes(limits),
    // No channelz: nothing here reads it, and it would track every call.
    "grpc.enable_channelz": 0,
    // HTTP/2 memory per connection, in MB (Node's default, 10, refuses streams with
    // ENHANCE_YOUR_CALM long before a few large requests within the limits are in flight).
    "grpc-node.max_session_memory": Math.ceil((4 * hardCapBytes(limits)) / (1024 * 1024)),
    // Without these a connection is held for as long as its client likes, idle or half-open, each a
    // file descriptor and buffers: enough of them starve the server (test/hardening/connections).
    "grpc.max_connection_idle_ms": options.connectionIdleTimeoutMs,
    // A client that stops answering pings (gone, or not reading) is dropped with what was queued for it.
    "grpc.keepalive_time_ms": options.keepaliveIntervalMs,
    "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs,
    // The last interceptor is the outermost: auth refusals pass through the stats.
    interceptors: [rpcStatsInterceptor(options.rpcStats), ...(options.auth ? [authInterceptor(options.auth)] : [])],
  });
  for (const service of options.services) {
    const implementation: UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(service.handlers))
      implementation[name] = adapt(handler, options.onBug);
    server.addService(service.definition as ServiceDefinition, implementation);
  }
  const port = await bind(server, options);
  widenReceiveWindows(server);
  return {
    port,
    shutdown: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

type AnyCall = ServerUnaryCall<unknown, unknown> & ServerWritableStream<unknown, unknown>;

/** A neutral handler as grpc-js calls it. */
function adapt(handler: Handler, onBug: (error: unknown) => void): UntypedServiceImplementation[string] {
  switch (handler.kind) {
    case "unary":
      return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        // Handlers may throw synchronously (validation) or reject: both end in one status.
        Promise.resolve()
          .then(() => handler.handle(call.request, context(call)))
          .then(
            (response) => callback(null, response),
            (error: unknown) => callback(grpcJsStatus(toStatus(error, onBug))),
          );
      };
    case "serverStream":
      return (call: AnyCall) => handler.handle(call.request, context(call), sink(call));
    case "bidi":
      return (call: ServerDuplexStream<unknown, unknown>) => {
        const stream = handler.handle(context(call), sink(call as unknown as AnyCall));
        call.on("data", (message: unknown) => stream.message(message));
        call.on("end", () => stream.end());
      };
  }
}

function context(call: { cancelled: boolean; once(event: "cancelled", listener: () => void): unknown }): CallContext {
  return {
    get cancelled() {
      return call.cancelled;
    },
    onCancel: (listener) => call.once("cancelled", listener),
  };
}

function sink(call: ServerWritableStream<unknown, unknown>): MessageSink<unknown> {
  return {
    write: (message, taken) => call.write(message, taken),
    end(status) {
      if (status.code === 0) {
        call.end();
        return;
      }
      // grpc-js sends the status once the messages written before it are out (its 'error' handler ends the call).
      call.emit("error", { ...grpcJsStatus(status), message: status.details });
    },
    reset: () => resetStream(call),
  };
}

function grpcJsStatus(status: CallStatus): { code: number; details: string; metadata?: Metadata } {
  if (!status.trailers?.length) return { code: status.code, details: status.details };
  const metadata = new Metadata();
  for (const [name, value] of status.trailers) metadata.set(name, value);
  return { code: status.code, details: status.details, metadata };
}

/**
 * The HTTP/2 stream under a grpc-js server call: grpc-js offers no way to reset a call whose client
 * stopped reading, and ending it with a status leaves the buffered messages queued before the
 * status. Found by walking the interceptor chain to the base call; a no-op if grpc-js changes.
 */
function resetStream(call: unknown): void {
  let link = (call as { call?: unknown }).call as { stream?: ServerHttp2Stream; nextCall?: unknown } | undefined;
  for (let depth = 0; link && depth < 16; depth++) {
    if (link.stream) {
      link.stream.close(http2Constants.NGHTTP2_CANCEL);
      return;
    }
    link = link.nextCall as typeof link;
  }
}

function bind(server: Server, options: TransportOptions): Promise<number> {
  const address = formatAddress(options.host, options.port);
  return new Promise((resolve, reject) => {
    server.bindAsync(address, serverCredentials(options.tls), (error, port) => {
      if (error) reject(new HomeKvError("E_LISTEN", `cannot listen on ${address}: ${bindReason(error)}`));
      else resolve(port);
    });
  });
}

/** grpc-js wraps the socket error in a sentence of its own; keep the part a person can act on. */
function bindReason(error: Error): string {
  const inner = /errors: \[(.*)\]$/.exec(error.message)?.[1] ?? error.message;
  if (inner.includes("EADDRINUSE")) return "address already in use";
  if (inner.includes("EADDRNOTAVAIL")) return "address not available on this machine";
  if (inner.includes("EACCES")) return "permission denied";
  return inner;
}
