import {
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  frameHeader,
  headerBlockFrames,
  uint32Payload,
  WINDOW_BYTES_MAX,
} from "../../h2/frames.ts";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../h2/grpc-message.ts";
import type { CallStatus } from "../call.ts";
import { RESPONSE_HEADERS_BLOCK, trailersBlock } from "./grpc-headers.ts";
import type { Output } from "./output.ts";

/** What a stream needs of its connection: the socket's queue and the connection's send window. */
export interface StreamHost {
  readonly output: Output;
  /** DATA the connection may still send (the peer's connection window). */
  sendWindow: number;
  readonly peerFramePayloadMax: number;
  /** Bytes of answers the streams hold while they wait for window (the output bound counts them). */
  heldBytes: number;
  /** Whether the answers held (waiting for window, or written and not taken) reached H2_LIMITS.outputBytesMax. */
  answersAtBound(): boolean;
  /** Runs `start`, a unary call's handler, once the connection lets it (src/server/h2/call-admission.ts). */
  admit(stream: H2Stream, start: () => void): void;
  /** The handler `admit` started has given its answer (or failed): its place frees once the answer is out. */
  handlerDone(stream: H2Stream): void;
  /** The stream has DATA to send and no window: pump it again on the next WINDOW_UPDATE. */
  waitForWindow(stream: H2Stream): void;
  /** The stream is done both ways, or reset: forget it. */
  closed(stream: H2Stream): void;
}

/** What runs a call over a stream (src/server/h2/server-call.ts). */
export interface StreamCall {
  data(payload: Buffer): void;
  /** Bytes of a request message not yet whole. */
  readonly heldBytes: number;
  /** The client's END_STREAM: no more request messages. */
  halfClose(): void;
  /** Ends the call with `status` (a refusal by the connection). */
  finish(status: CallStatus): void;
  /** The stream is gone (reset by either side, or its connection): stop the handler. */
  cancel(): void;
  /** A message given to serialize later threw: ends the call with the status of `error`. */
  failed(error: unknown): void;
}

/**
 * A message on its way out: its gRPC prefix, then its bytes (`at` counts over both); or, until the
 * stream may send, the means to serialize it.
 */
interface Outgoing {
  prefix: Buffer;
  body: Uint8Array | undefined;
  serialize: (() => Uint8Array) | undefined;
  at: number;
  taken: (() => void) | undefined;
}

const EMPTY = Buffer.alloc(0);

/**
 * Request bytes a stream whose answer is complete takes (and drops) before it resets the rest: well
 * under its receive window (src/server/flow-control.ts), so that the client is never left waiting
 * for window the server would not give.
 */
const DISCARD_BYTES_MAX = 64 * 1024;

/** Bytes `from` to `to` of `bytes`: the array itself when that is all of it (a view costs more than the rest of a small answer). */
const part = (bytes: Uint8Array, from: number, to: number) =>
  from === 0 && to === bytes.byteLength ? bytes : bytes.subarray(from, to);

/** Bytes of an item once serialized (none before: it holds no copy then). */
const lengthOf = (item: Outgoing) => (item.body === undefined ? 0 : GRPC_MESSAGE_PREFIX_BYTES + item.body.byteLength);

/**
 * One HTTP/2 stream of a gRPC call, server side: the state (open, half-closed, closed), the send
 * window, and the answers queued while there is no window. Messages go out as DATA frames within
 * both windows, headers before the first, trailers after the last.
 */
export class H2Stream {
  call: StreamCall | undefined;
  /** END_STREAM received: the client sends nothing more. */
  remoteClosed = false;
  /** END_STREAM or RST_STREAM sent (or received): the server sends nothing more. */
  localClosed = false;
  /** DATA received and not yet given back as stream window. */
  receivedUnacknowledged = 0;
  receiveWindow: number;
  sendWindow: number;
  /** Request bytes its call holds (a message not yet whole), as the connection last counted them. */
  inboundHeld = 0;
  /** Its unary handler gave its answer: the call's place among those under way frees once the answer is out. */
  handlerSettled = false;
  private headersSent = false;
  private discardedBytes = 0;
  /** An answer waiting for the end of the request (`answerAfterRequest`). */
  private heldAnswer: Buffer | undefined;
  private readonly outgoing: Outgoing[] = [];
  private trailers: Buffer | undefined;

  constructor(
    readonly id: number,
    private readonly host: StreamHost,
    peerInitialWindow: number,
    receiveWindow: number,
  ) {
    this.sendWindow = peerInitialWindow;
    this.receiveWindow = receiveWindow;
  }

  /**
   * Queues a message (its gRPC prefix is added, the message not copied); `taken` runs once the socket
   * took its last byte. Given as a function, the message is serialized only once the windows let
   * some of it go: a stream whose client reads nothing then holds no copy of it. Watch streams give
   * theirs so: 240 stuck ones, each given a 4 MiB revision in turn by the watch budget and reset when
   * stuck, serialized 2.9 GB in 5 s that the collector freed too late (a peak 490 MiB above the start).
   */
  sendMessage(message: Uint8Array | (() => Uint8Array), taken?: () => void): void {
    if (this.answered) return;
    this.sendHeaders();
    const item: Outgoing = { prefix: EMPTY, body: undefined, serialize: undefined, at: 0, taken };
    if (typeof message === "function") item.serialize = message;
    else if (!this.setBody(item, message)) return;
    this.outgoing.push(item);
    this.pump();
  }

  /** Ends the call: trailers after the messages queued (Trailers-Only if none went out). */
  sendStatus(status: CallStatus): void {
    if (this.answered || this.trailers) return;
    this.trailers = trailersBlock(status, !this.headersSent);
    this.headersSent = true;
    this.pump();
  }

  /**
   * A whole answer decided from the request's headers alone (an unknown method, a refused token, an
   * HTTP error that is not gRPC's): `block` ends the stream once the client has sent the rest of its
   * request, or at once past DISCARD_BYTES_MAX of it. A client still sending its request then does
   * not get the answer first: curl 7.88 waits forever for an answer that came before it finished
   * sending, or fails on the reset that follows it (test/system/interop-curl.system.ts).
   */
  answerAfterRequest(block: Buffer): void {
    if (this.localClosed || this.headersSent) return;
    this.headersSent = true;
    this.heldAnswer = block;
    if (this.remoteClosed) this.releaseAnswer();
  }

  /** Runs `start`, the call's handler, once its connection lets it; `handlerDone` once it answered. */
  admit(start: () => void): void {
    this.host.admit(this, start);
  }

  handlerDone(): void {
    this.host.handlerDone(this);
  }

  /** Whether the answer is complete (sent, or held for the end of the request): what comes now is discarded. */
  get answered(): boolean {
    return this.localClosed || this.heldAnswer !== undefined;
  }

  /** RST_STREAM with `code`: nothing more either way; what was queued for it is dropped. */
  reset(code: number): void {
    if (this.localClosed && this.remoteClosed) return;
    this.host.output.push(encodeFrame(FRAME.RST_STREAM, 0, this.id, uint32Payload(code)));
    this.abandon();
  }

  /** Forgets the stream without a frame (reset by the client, or its connection gone). */
  abandon(): void {
    this.localClosed = true;
    this.remoteClosed = true;
    this.dropOutgoing();
    this.host.closed(this);
    this.call?.cancel();
  }

  /** Bytes of answers waiting for window. */
  get waitingBytes(): number {
    let bytes = 0;
    for (const item of this.outgoing) bytes += lengthOf(item) - item.at;
    return bytes;
  }

  /** The peer's WINDOW_UPDATE or SETTINGS changed this stream's window. */
  addSendWindow(delta: number): boolean {
    this.sendWindow += delta;
    return this.sendWindow <= WINDOW_BYTES_MAX;
  }

  /** The client's END_STREAM. */
  endRemote(): void {
    this.remoteClosed = true;
    if (this.heldAnswer) this.releaseAnswer();
    else if (this.localClosed) this.host.closed(this);
    this.call?.halfClose();
  }

  /** Sends what the windows allow, then the trailers once nothing is left. */
  pump(): void {
    const host = this.host;
    while (this.outgoing.length > 0) {
      const item = this.outgoing[0]!;
      if (Math.min(this.sendWindow, host.sendWindow) <= 0) {
        host.waitForWindow(this);
        return;
      }
      const body = item.body ?? this.serialize(item);
      if (body === undefined) return;
      const length = lengthOf(item);
      const size = Math.min(length - item.at, this.sendWindow, host.sendWindow, host.peerFramePayloadMax);
      host.output.push(frameHeader(size, FRAME.DATA, 0, this.id));
      const end = item.at + size;
      if (item.at < GRPC_MESSAGE_PREFIX_BYTES)
        host.output.push(part(item.prefix, item.at, Math.min(end, GRPC_MESSAGE_PREFIX_BYTES)));
      if (end > GRPC_MESSAGE_PREFIX_BYTES)
        host.output.push(part(body, Math.max(0, item.at - GRPC_MESSAGE_PREFIX_BYTES), end - GRPC_MESSAGE_PREFIX_BYTES));
      item.at = end;
      this.sendWindow -= size;
      host.sendWindow -= size;
      host.heldBytes -= size;
      if (item.at === length) {
        this.outgoing.shift();
        if (item.taken) host.output.whenTaken(item.taken);
      }
    }
    if (this.trailers === undefined) return;
    for (const frame of headerBlockFrames(this.id, this.trailers, true, host.peerFramePayloadMax))
      host.output.push(frame);
    this.trailers = undefined;
    this.localClosed = true;
    // The answer may be complete while the client still sends (a request past the cap, a deadline):
    // its END_STREAM is awaited, what comes meanwhile discarded (`discard`).
    if (this.remoteClosed) host.closed(this);
  }

  /**
   * DATA that came after the answer was decided. Past DISCARD_BYTES_MAX the answer goes if it was
   * held, the client is told to stop (RST_STREAM NO_ERROR, RFC 9113, 8.1) and the stream is forgotten.
   */
  discard(bytes: number): void {
    this.discardedBytes += bytes;
    if (this.remoteClosed || this.discardedBytes <= DISCARD_BYTES_MAX) return;
    if (this.heldAnswer) this.releaseAnswer();
    this.host.output.push(encodeFrame(FRAME.RST_STREAM, 0, this.id, uint32Payload(ERROR_CODE.NO_ERROR)));
    this.remoteClosed = true;
    this.host.closed(this);
  }

  /**
   * Gives `item` its bytes, counted in what the connection holds; once that has reached
   * H2_LIMITS.outputBytesMax the answer is dropped instead and the stream reset: a client that asks
   * and does not read makes the server hold no more (the bound plus the answer that crossed it).
   * The connection starts no unary call while it is reached, so that an answer that was let start
   * is refused only if others filled the room meanwhile: not for 64 answers of 1 MiB alone.
   */
  private setBody(item: Outgoing, body: Uint8Array): boolean {
    if (this.host.answersAtBound()) {
      this.reset(ERROR_CODE.ENHANCE_YOUR_CALM);
      return false;
    }
    const prefix = Buffer.allocUnsafe(GRPC_MESSAGE_PREFIX_BYTES);
    prefix[0] = 0;
    prefix.writeUInt32BE(body.byteLength, 1);
    item.prefix = prefix;
    item.body = body;
    this.host.heldBytes += GRPC_MESSAGE_PREFIX_BYTES + body.byteLength;
    return true;
  }

  /** Serializes the message at the head of the queue; undefined when that threw (the call is then ended) or it did not fit (reset). */
  private serialize(item: Outgoing): Uint8Array | undefined {
    let body: Uint8Array;
    try {
      body = item.serialize!();
    } catch (error) {
      this.outgoing.shift();
      this.call?.failed(error);
      return undefined;
    }
    item.serialize = undefined;
    return this.setBody(item, body) ? body : undefined;
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.host.output.push(encodeFrame(FRAME.HEADERS, FLAG.END_HEADERS, this.id, RESPONSE_HEADERS_BLOCK));
  }

  private releaseAnswer(): void {
    this.trailers = this.heldAnswer;
    this.heldAnswer = undefined;
    this.pump();
  }

  private dropOutgoing(): void {
    this.host.heldBytes -= this.waitingBytes;
    this.outgoing.length = 0;
    this.trailers = undefined;
    this.heldAnswer = undefined;
  }
}
