import { status as Status } from "@grpc/grpc-js";
import { ERROR_CODE } from "../../h2/frames.ts";
import type { Header } from "../../h2/hpack.ts";
import { type AuthTokens, checkCall } from "../auth.ts";
import type { CallContext, CallStatus, Handler, MessageSink, MethodDefinition, RpcService } from "../call.ts";
import { type RpcStats, recordCall } from "../rpc-stats.ts";
import { toStatus } from "../status.ts";
import { Deadlines, type Expiring } from "./deadlines.ts";
import { parseGrpcTimeout, trailersBlock, UNSUPPORTED_MEDIA_TYPE_BLOCK } from "./grpc-headers.ts";
import { MessageReader } from "./message-reader.ts";
import type { H2Stream, StreamCall } from "./stream.ts";

type UnaryHandling = Extract<Handler, { kind: "unary" }>;

interface Method {
  definition: MethodDefinition;
  handler: Handler;
}

export interface DispatchOptions {
  services: readonly RpcService[];
  auth: AuthTokens | undefined;
  rpcStats: RpcStats;
  /** Past this a request message is refused before it is held (request-size.ts's hard cap). */
  messageBytesCap: number;
  onBug: (error: unknown) => void;
}

/**
 * Turns a stream whose request headers came into a call: checks the method, the content type, the
 * token (auth.ts) and grpc-timeout, then feeds the request messages to the method's handler and its
 * answers to the stream. Every call that reaches a method is counted in the RPC stats.
 */
export class Dispatcher {
  private readonly methods = new Map<string, Method>();
  private readonly deadlines = new Deadlines();

  readonly messageBytesCap: number;

  constructor(private readonly options: DispatchOptions) {
    this.messageBytesCap = options.messageBytesCap;
    for (const service of options.services) {
      for (const [name, definition] of Object.entries(service.definition)) {
        const handler = service.handlers[name];
        if (handler) this.methods.set(definition.path, { definition, handler });
      }
    }
  }

  open(stream: H2Stream, headers: readonly Header[]): void {
    let path = "";
    let contentType = "";
    let method = "";
    let timeout: string | undefined;
    let encoding: string | undefined;
    let authorization: string | undefined;
    for (const [name, value] of headers) {
      if (name === ":path") path = value;
      else if (name === "content-type") contentType = value;
      else if (name === ":method") method = value;
      else if (name === "grpc-timeout") timeout = value;
      else if (name === "grpc-encoding") encoding = value;
      else if (name === "authorization") authorization = value;
    }
    if (method !== "POST" || !/^application\/grpc([+;]|$)/.test(contentType)) {
      stream.answerAfterRequest(UNSUPPORTED_MEDIA_TYPE_BLOCK);
      return;
    }
    const target = this.methods.get(path);
    if (!target) {
      const status = { code: Status.UNIMPLEMENTED, details: `The server does not implement the method ${path}` };
      stream.answerAfterRequest(trailersBlock(status, true));
      return;
    }
    const call = new ServerCall(stream, target, this.options);
    stream.call = call;
    const refusal = this.options.auth && checkCall(this.options.auth, path, authorization);
    if (refusal) return call.refuse(refusal);
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      if (ms === undefined)
        return call.refuse({ code: Status.INTERNAL, details: `Invalid grpc-timeout value "${timeout}"` });
      call.setDeadline(this.deadlines, ms);
    }
    try {
      call.reader = new MessageReader(this.options.messageBytesCap, encoding);
    } catch (error) {
      return call.refuse(toStatus(error, this.options.onBug));
    }
    call.start();
  }
}

/** One call: its handler, its cancellation and its end (status, stats). */
class ServerCall implements StreamCall, CallContext, Expiring {
  cancelled = false;
  reader: MessageReader | undefined;
  private finished = false;
  private cancelListeners: (() => void)[] | undefined;
  /** The deadline bucket this call is in, while it has one. */
  private deadline: Set<Expiring> | undefined;
  private readonly startedMs = performance.now();
  /** Unary and server-streaming calls take exactly one request message, held until the client's END_STREAM. */
  private request: Buffer | undefined;
  private requests = 0;
  /** The request is whole and the handler waits for the connection to let it start. */
  private waitingTurn = false;
  private bidi: { message(request: unknown): void; end(): void } | undefined;
  /** Decompressions in flight keep a bidi stream's messages in order; undefined while none was needed. */
  private inflating: Promise<void> | undefined;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: Method,
    private readonly options: DispatchOptions,
  ) {}

  setDeadline(deadlines: Deadlines, ms: number): void {
    this.deadline = deadlines.add(this, ms);
  }

  expire(): void {
    this.finish({ code: Status.DEADLINE_EXCEEDED, details: "Deadline exceeded" });
    this.cancel();
  }

  start(): void {
    if (this.method.handler.kind === "bidi") {
      const handler = this.method.handler;
      this.run(() => {
        this.bidi = handler.handle(this, this.sink());
      });
    }
  }

  /** A message not yet whole, or the whole request of a call waiting for its turn. */
  get heldBytes(): number {
    if (this.finished) return 0;
    return (this.reader?.heldBytes ?? 0) + (this.waitingTurn ? (this.request?.length ?? 0) : 0);
  }

  onCancel(listener: () => void): void {
    (this.cancelListeners ??= []).push(listener);
  }

  data(payload: Buffer): void {
    if (this.finished || !this.reader) return;
    let messages: { bytes: Buffer; compressed: boolean }[];
    try {
      messages = this.reader.push(payload);
    } catch (error) {
      this.finish(toStatus(error, this.options.onBug));
      return;
    }
    for (const message of messages) {
      this.requests++;
      if (this.bidi) this.deliver(message);
      else this.request ??= message.compressed ? this.inflateLater(message.bytes) : message.bytes;
    }
  }

  halfClose(): void {
    if (this.finished) return;
    const handler = this.method.handler;
    if (handler.kind === "bidi") {
      this.afterInflating(() => this.run(() => this.bidi?.end()));
      return;
    }
    if (this.requests !== 1 || this.reader?.partial) {
      const kind = this.requests === 0 ? "no request message" : "a second request message";
      this.finish({
        code: Status.UNIMPLEMENTED,
        details: `Received ${kind} for server streaming method ${this.method.definition.path}`,
      });
      return;
    }
    this.afterInflating(() => {
      if (this.finished || this.request === undefined) return;
      if (handler.kind === "unary") {
        this.waitingTurn = true;
        this.stream.admit(() => this.runUnary(handler));
        return;
      }
      const request = this.decode(this.request);
      if (request !== undefined) this.run(() => handler.handle(request, this, this.sink()));
    });
  }

  /** The handler, once the connection let it start (call-admission.ts); then its answer, and word that it is given. */
  private runUnary(handler: UnaryHandling): void {
    this.waitingTurn = false;
    const request = this.finished || this.request === undefined ? undefined : this.decode(this.request);
    if (request === undefined) return this.stream.handlerDone();
    let answer: unknown;
    try {
      answer = handler.handle(request, this);
    } catch (error) {
      this.finish(toStatus(error, this.options.onBug));
      return this.stream.handlerDone();
    }
    Promise.resolve(answer).then(
      (response) => {
        this.reply(response);
        this.stream.handlerDone();
      },
      (error: unknown) => {
        this.finish(toStatus(error, this.options.onBug));
        this.stream.handlerDone();
      },
    );
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    // A call whose stream went away sent no status: it is not counted (as with grpc-js, whose
    // interceptors see only the statuses sent).
    this.stop();
    const listeners = this.cancelListeners;
    this.cancelListeners = undefined;
    for (const listener of listeners ?? []) listener();
  }

  failed(error: unknown): void {
    this.finish(toStatus(error, this.options.onBug));
  }

  /** Ends the call, before it started, with `status` (sent once the request is complete). */
  refuse(status: CallStatus): void {
    if (this.finished) return;
    this.end(status.code);
    this.stream.answerAfterRequest(trailersBlock(status, true));
  }

  /** Sends `status` (the trailers) after what was written, once. */
  finish(status: CallStatus): void {
    if (this.finished) return;
    this.end(status.code);
    this.stream.sendStatus(status);
  }

  private stop(): void {
    this.finished = true;
    this.deadline?.delete(this);
  }

  private end(code: number): void {
    this.stop();
    recordCall(
      this.options.rpcStats,
      this.method.definition.path,
      code,
      Math.max(0, performance.now() - this.startedMs) / 1000,
    );
  }

  private reply(response: unknown): void {
    if (this.finished) return;
    const bytes = this.encode(response);
    if (bytes === undefined) return;
    this.stream.sendMessage(bytes);
    this.finish({ code: Status.OK, details: "" });
  }

  private sink(): MessageSink<unknown> {
    return {
      write: (message, taken) => {
        if (this.finished) return;
        // Serialized once the stream may send it (stream.ts says why).
        this.stream.sendMessage(() => this.method.definition.responseSerialize(message), taken);
      },
      end: (status) => this.finish(status),
      reset: () => this.stream.reset(ERROR_CODE.CANCEL),
    };
  }

  /** Runs `next` now, or after the decompressions in flight when there are any. */
  private afterInflating(next: () => void): void {
    if (this.inflating) this.inflating = this.inflating.then(next);
    else next();
  }

  private deliver(message: { bytes: Buffer; compressed: boolean }): void {
    const handOver = (bytes: Buffer | undefined) => {
      if (bytes === undefined || this.finished) return;
      const request = this.decode(bytes);
      if (request !== undefined) this.run(() => this.bidi?.message(request));
    };
    if (!message.compressed) this.afterInflating(() => handOver(message.bytes));
    else this.inflating = (this.inflating ?? Promise.resolve()).then(() => this.inflate(message.bytes).then(handOver));
  }

  /** A compressed unary request: inflated while the rest of the stream comes; `request` holds it meanwhile. */
  private inflateLater(bytes: Buffer): Buffer {
    this.inflating = this.inflate(bytes).then((inflated) => {
      if (inflated !== undefined) this.request = inflated;
    });
    return bytes;
  }

  private async inflate(bytes: Buffer): Promise<Buffer | undefined> {
    try {
      return await this.reader!.decompress(bytes);
    } catch (error) {
      this.finish(toStatus(error, this.options.onBug));
      return undefined;
    }
  }

  private decode(bytes: Buffer): unknown {
    try {
      return this.method.definition.requestDeserialize(bytes);
    } catch (error) {
      // request-size.ts's decoders mark what does not decode; any other decoder throws (reflection's).
      this.finish({
        code: Status.INTERNAL,
        details: `Error deserializing request: ${error instanceof Error ? error.message : error}`,
      });
      return undefined;
    }
  }

  private encode(message: unknown): Buffer | undefined {
    try {
      return this.method.definition.responseSerialize(message);
    } catch (error) {
      this.finish(toStatus(error, this.options.onBug));
      return undefined;
    }
  }

  /** Runs handler code: what it throws ends the call with a status, never the connection. */
  private run(body: () => unknown): void {
    try {
      body();
    } catch (error) {
      this.finish(toStatus(error, this.options.onBug));
    }
  }
}
