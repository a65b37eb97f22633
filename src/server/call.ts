/**
 * The seam between the gRPC services and the transports that carry them (grpc-js, or HomeKV's own
 * HTTP/2 server in src/server/h2): a handler sees a decoded request, a `CallContext` and, for a
 * streaming answer, a `MessageSink`; it never sees a transport's call object. Each transport adapts
 * its calls to these, so that one handler serves both. Status codes are grpc-js's `status` enum
 * (only its constants: they are gRPC's, whichever transport sends them).
 */

/** A call's final status: a gRPC status code, its message and the trailers that go with it. */
export interface CallStatus {
  code: number;
  details: string;
  trailers?: readonly (readonly [name: string, value: string])[];
}

/** A handler's way to end a call with a given status rather than one derived from an error. */
export class StatusError extends Error {
  constructor(readonly status: CallStatus) {
    super(status.details);
  }
}

export interface CallContext {
  /** True once the client cancelled, the deadline passed, or the connection went away. */
  readonly cancelled: boolean;
  /** Runs `listener` once, when the call is cancelled (not when it ends normally). */
  onCancel(listener: () => void): void;
}

/** Where a streaming handler writes its answers. */
export interface MessageSink<Res> {
  /** Queues a message; `taken` runs once the transport took it (its client is reading, or it is buffered within flow control). */
  write(message: Res, taken?: () => void): void;
  /** Ends the call with `status`, after the messages written before. */
  end(status: CallStatus): void;
  /** Drops the stream now (RST_STREAM), with whatever is still buffered for it. */
  reset(): void;
}

export type UnaryHandler<Req, Res> = (request: Req, call: CallContext) => Res | Promise<Res>;
export type ServerStreamHandler<Req, Res> = (request: Req, call: CallContext, sink: MessageSink<Res>) => void;
/** A stream both ways: the handler gets each request message as it comes, then the client's half-close. */
export type BidiHandler<Req, Res> = (
  call: CallContext,
  sink: MessageSink<Res>,
) => { message(request: Req): void; end(): void };

// biome-ignore lint/suspicious/noExplicitAny: a table of methods holds handlers of every request and response type
type Any = any;

export type Handler<Req = Any, Res = Any> =
  | { kind: "unary"; handle: UnaryHandler<Req, Res> }
  | { kind: "serverStream"; handle: ServerStreamHandler<Req, Res> }
  | { kind: "bidi"; handle: BidiHandler<Req, Res> };

export const unary = <Req, Res>(handle: UnaryHandler<Req, Res>): Handler<Req, Res> => ({ kind: "unary", handle });
export const serverStream = <Req, Res>(handle: ServerStreamHandler<Req, Res>): Handler<Req, Res> => ({
  kind: "serverStream",
  handle,
});
export const bidi = <Req, Res>(handle: BidiHandler<Req, Res>): Handler<Req, Res> => ({ kind: "bidi", handle });

/** What a transport needs to know of a method (the shape of a grpc-js MethodDefinition). */
export interface MethodDefinition<Req = Any, Res = Any> {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): Req;
  responseSerialize(value: Res): Buffer;
}

/** A handler for each method of a service definition, typed by its messages. */
export type HandlersOf<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, infer Res> ? Handler<Req, Res> : never;
};

/** A service: its methods by name, and the handler of each. */
export interface RpcService {
  definition: Readonly<Record<string, MethodDefinition>>;
  handlers: Readonly<Record<string, Handler>>;
}
