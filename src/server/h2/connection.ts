import { status as Status } from "@grpc/grpc-js";
import {
  DEFAULT_FRAME_PAYLOAD_MAX,
  DEFAULT_WINDOW_BYTES,
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  FRAME_HEADER_BYTES,
  PREFACE,
  readSettings,
  SETTING,
  uint32Payload,
  unpad,
  WINDOW_BYTES_MAX,
} from "../../h2/frames.ts";
import { HpackDecoder } from "../../h2/hpack.ts";
import { CallAdmission } from "./call-admission.ts";
import { Output } from "./output.ts";
import { RateBudget } from "./rate-budget.ts";
import type { Dispatcher } from "./server-call.ts";
import { H2_LIMITS, SERVER_SETTINGS_PAYLOAD } from "./settings.ts";
import { H2Stream, type StreamHost } from "./stream.ts";

/** The socket under a connection (Bun's TCP or TLS socket). */
export interface ConnectionSocket {
  write(data: Uint8Array): number;
  /** Sends what was written, then FIN; still reads until the peer closes. */
  end(): void;
  /** Closes at once (RST). */
  terminate(): void;
  /** Stops reading the socket (the client's writes then wait in the kernel's buffers, then in its own), and starts again. */
  pause(): void;
  resume(): void;
}

/**
 * How long a connection the server ended may go on being read (and what comes discarded): long
 * enough for its client to read the GOAWAY before a reset could discard it, not so long that a
 * client that never closes its side holds the socket.
 */
const LINGER_MS = 1_000;

/** A violation that ends the connection (RFC 9113, 5.4.1): GOAWAY with this code. */
class ConnectionError extends Error {
  constructor(
    readonly code: number,
    readonly debug: string,
  ) {
    super(debug);
  }
}

const EMPTY = Buffer.alloc(0);
const SETTINGS_ACK = encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0);

/**
 * One HTTP/2 connection (RFC 9113), server side, for gRPC: the preface, SETTINGS, the stream table,
 * header blocks (HPACK, CONTINUATION), flow control both ways, PING, RST_STREAM, GOAWAY, and the
 * budgets that keep a hostile client from making the server hold or do without bound. Streams whose
 * headers are complete go to the dispatcher, which runs their calls.
 */
export class H2ServerConnection implements StreamHost {
  readonly output: Output;
  sendWindow = DEFAULT_WINDOW_BYTES;
  peerFramePayloadMax = DEFAULT_FRAME_PAYLOAD_MAX;
  heldBytes = 0;
  private peerInitialWindow = DEFAULT_WINDOW_BYTES;
  private readonly streams = new Map<number, H2Stream>();
  private readonly waitingForWindow = new Set<H2Stream>();
  private lastStreamId = 0;
  private input: Buffer = EMPTY;
  /** The client's frames wait, unread: the socket has not taken what the server wrote (`readInput`). */
  private inputPaused = false;
  private prefaceDone = false;
  private settingsSeen = false;
  /** A header block spread over CONTINUATION frames. */
  private continuing:
    | { id: number; fragments: Buffer[]; bytes: number; frames: number; endStream: boolean }
    | undefined;
  private readonly decoder = new HpackDecoder(H2_LIMITS.headerTableBytes);
  /** The connection's receive window, and DATA taken and not yet given back. */
  private receiveWindow = H2_LIMITS.receiveWindowBytes;
  private receivedUnacknowledged = 0;
  /** Request bytes the streams hold (messages not yet whole): past a bound, the call that grows it is refused. */
  private inboundHeld = 0;
  private readonly inboundHeldMax: number;
  /** Unary calls whose handlers run, and those waiting for room among the answers (`hasRoomForAnswers`). */
  private readonly admission = new CallAdmission<H2Stream>(H2_LIMITS.handlersRunningMax, () =>
    this.hasRoomForAnswers(),
  );
  /** The socket is to say when it has taken what it holds: calls wait for that room. */
  private admissionAwaitsTaken = false;
  private readonly resets = new RateBudget(H2_LIMITS.resets);
  private readonly controlFrames = new RateBudget(H2_LIMITS.controlFrames);
  /** GOAWAY sent: no new streams; the connection closes once the last one ends. */
  private goingAway = false;
  /** The socket is closed, or closing: nothing more is read or written. */
  private ended = false;
  /** When the connection last had no stream open (the idle timeout counts from it), and last heard from its client. */
  lastActiveMs = performance.now();
  lastReceivedMs = performance.now();
  /** A keepalive PING not yet acknowledged, and when it went. */
  pingSentMs: number | undefined;

  constructor(
    private readonly socket: ConnectionSocket,
    private readonly dispatcher: Dispatcher,
    private readonly onClosed: (connection: H2ServerConnection) => void,
  ) {
    this.output = new Output(socket, () => this.pumpWaiting());
    // As grpc-js's session memory (server.ts): room for a few requests at the hard cap at once.
    this.inboundHeldMax = Math.max(H2_LIMITS.inboundBytesMin, 4 * dispatcher.messageBytesCap);
    this.output.push(encodeFrame(FRAME.SETTINGS, 0, 0, SERVER_SETTINGS_PAYLOAD));
    this.output.push(
      encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(H2_LIMITS.receiveWindowBytes - DEFAULT_WINDOW_BYTES)),
    );
  }

  get openStreams(): number {
    return this.streams.size;
  }

  receive(data: Buffer): void {
    if (this.ended) return;
    this.lastReceivedMs = performance.now();
    this.input = this.input.length === 0 ? data : Buffer.concat([this.input, data]);
    if (!this.inputPaused) this.readInput();
  }

  /**
   * Processes the client's frames, unless the socket has not taken H2_LIMITS.outputPauseBytes of
   * what the server wrote: then the rest waits, unread, until it has (backpressure). Without it, a
   * client that never reads could make the server queue an answer for every frame it sends —
   * RST_STREAM, PING and SETTINGS acknowledgements, an answer decided from the headers — that the
   * bound on gRPC messages (H2_LIMITS.outputBytesMax) does not count. Its frames wait in TCP's
   * buffers instead, then its writes; nothing in RFC 9113 has a server read at its client's pace.
   * h2o stops reading so, past a soft limit on its output buffer. nghttp2 and Go's server close the
   * connection past 1,000 PING and SETTINGS acknowledgements queued and 10,000 control frames:
   * answers to requests are none of those, and the reading stopped bounds them all.
   */
  private readInput(): void {
    let input = this.input;
    try {
      if (!this.prefaceDone) {
        const seen = Math.min(input.length, PREFACE.length);
        if (!input.subarray(0, seen).equals(PREFACE.subarray(0, seen)))
          throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "invalid connection preface");
        if (seen < PREFACE.length) {
          this.input = Buffer.from(input);
          return;
        }
        this.prefaceDone = true;
        input = input.subarray(PREFACE.length);
      }
      let at = 0;
      // Bounded by the input: each round takes a whole frame off it.
      while (!this.ended && input.length - at >= FRAME_HEADER_BYTES) {
        if (this.output.pendingBytes > H2_LIMITS.outputPauseBytes) {
          this.pauseInput();
          break;
        }
        const length = input.readUIntBE(at, 3);
        if (length > H2_LIMITS.framePayloadMax)
          throw new ConnectionError(
            ERROR_CODE.FRAME_SIZE_ERROR,
            `a frame of ${length} bytes, over SETTINGS_MAX_FRAME_SIZE`,
          );
        const end = at + FRAME_HEADER_BYTES + length;
        if (end > input.length) break;
        const type = input[at + 3]!;
        const flags = input[at + 4]!;
        const id = input.readUInt32BE(at + 5) & 0x7fff_ffff;
        const payload = input.subarray(at + FRAME_HEADER_BYTES, end);
        at = end;
        this.onFrame(type, flags, id, payload);
      }
      // What is left is part of one frame (or, paused, what waits): copied, so that the chunk it came in is not held.
      this.input = at === input.length ? EMPTY : Buffer.from(input.subarray(at));
      this.giveBackConnectionWindow();
    } catch (error) {
      if (!(error instanceof ConnectionError)) throw error;
      this.fail(error.code, error.debug);
    }
  }

  private pauseInput(): void {
    this.inputPaused = true;
    this.socket.pause();
    // Once taken, in a microtask: the socket's write that took it may be the close's last flush.
    this.output.whenTaken(() => queueMicrotask(() => this.resumeInput()));
  }

  private resumeInput(): void {
    if (this.ended || !this.inputPaused) return;
    this.inputPaused = false;
    this.socket.resume();
    this.readInput();
  }

  /** The socket takes writes again. */
  drain(): void {
    this.output.drain();
  }

  /** The socket is gone: every call on it is cancelled. */
  socketClosed(): void {
    if (this.ended && this.streams.size === 0) return;
    this.ended = true;
    this.output.close();
    for (const stream of [...this.streams.values()]) stream.abandon();
    this.onClosed(this);
  }

  /** GOAWAY NO_ERROR: the streams open now finish, no new ones start; then the connection closes. */
  shutdown(debug = ""): void {
    if (this.ended) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.output.push(goaway(this.lastStreamId, ERROR_CODE.NO_ERROR, debug));
    }
    if (this.streams.size === 0) this.close();
  }

  /** A keepalive PING; the server closes the connection if it is not answered in time. */
  ping(nowMs: number): void {
    this.pingSentMs = nowMs;
    this.output.push(encodeFrame(FRAME.PING, 0, 0, Buffer.alloc(8)));
  }

  /** Ends the connection at once (an unanswered keepalive). */
  close(): void {
    if (this.ended) return;
    this.output.flush();
    this.socketClosed();
    this.socket.end();
    setTimeout(() => this.socket.terminate(), LINGER_MS).unref();
  }

  waitForWindow(stream: H2Stream): void {
    this.waitingForWindow.add(stream);
  }

  admit(stream: H2Stream, start: () => void): void {
    this.admission.admit(stream, () => {
      start();
      // It held its request while it waited (ServerCall.heldBytes): no more.
      if (this.streams.get(stream.id) === stream) this.countHeld(stream);
    });
    this.awaitRoom();
  }

  handlerDone(stream: H2Stream): void {
    stream.handlerSettled = true;
    if (this.streams.get(stream.id) !== stream) this.releaseAfterTaken(stream);
  }

  /**
   * A unary call's place goes to the next once its handler answered, its stream closed and the
   * socket took the answer's last byte: an answer waiting for window, or for a client that does not
   * read, keeps its place, so that no more than H2_LIMITS.handlersRunningMax answers exist at once.
   */
  private releaseAfterTaken(stream: H2Stream): void {
    if (this.ended) return;
    this.output.whenTaken(() => {
      this.admission.done(stream);
      this.awaitRoom();
    });
  }

  /** Answers left (window came, or the socket took them): calls that waited for room may start. */
  private admitWaiting(): void {
    if (this.admission.waitingCount === 0) return;
    this.admission.startWaiting();
    this.awaitRoom();
  }

  /**
   * Whether one more unary handler may start: the answers this connection holds (waiting for window,
   * or written and not taken by the socket) have not reached the output bound, past which its
   * answer would be refused (stream.ts, setBody). Before, a client that asked and did not read had
   * every handler run and every answer built and serialized, then refused by the bound: two such
   * clients with 150 Gets of 1 MiB each took the RSS 850 MiB over its start
   * (test/hardening/slow-reader-answers.test.ts).
   */
  private hasRoomForAnswers(): boolean {
    return !this.ended && !this.answersAtBound();
  }

  answersAtBound(): boolean {
    return this.heldBytes + this.output.pendingBytes >= H2_LIMITS.outputBytesMax;
  }

  /** Calls wait for the socket to take what it holds: try them again once it has. */
  private awaitRoom(): void {
    if (this.admission.waitingCount === 0 || this.admissionAwaitsTaken || this.output.pendingBytes === 0) return;
    this.admissionAwaitsTaken = true;
    this.output.whenTaken(() =>
      queueMicrotask(() => {
        this.admissionAwaitsTaken = false;
        this.admitWaiting();
      }),
    );
  }

  closed(stream: H2Stream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    this.waitingForWindow.delete(stream);
    this.admission.forget(stream);
    if (stream.handlerSettled) this.releaseAfterTaken(stream);
    this.inboundHeld -= stream.inboundHeld;
    stream.inboundHeld = 0;
    if (this.streams.size === 0) {
      this.lastActiveMs = performance.now();
      if (this.goingAway) this.close();
    }
  }

  private fail(code: number, debug: string): void {
    if (this.ended) return;
    this.output.push(goaway(this.lastStreamId, code, debug));
    this.close();
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (!this.settingsSeen && type !== FRAME.SETTINGS)
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "expected SETTINGS as the first frame");
    if (this.continuing && (type !== FRAME.CONTINUATION || id !== this.continuing.id))
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "expected CONTINUATION frame");
    switch (type) {
      case FRAME.DATA:
        return this.onData(flags, id, payload);
      case FRAME.HEADERS:
        return this.onHeaders(flags, id, payload);
      case FRAME.CONTINUATION:
        return this.onContinuation(flags, payload);
      case FRAME.RST_STREAM:
        return this.onReset(id, payload);
      case FRAME.SETTINGS:
        return this.onSettings(flags, id, payload);
      case FRAME.PING:
        return this.onPing(flags, id, payload);
      case FRAME.GOAWAY:
        if (id !== 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "GOAWAY on a stream");
        // The client leaves: the calls it started finish, then the connection closes.
        return this.shutdown();
      case FRAME.WINDOW_UPDATE:
        return this.onWindowUpdate(id, payload);
      case FRAME.PUSH_PROMISE:
        throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case FRAME.PRIORITY:
        if (id === 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) this.resetStream(id, ERROR_CODE.FRAME_SIZE_ERROR);
        return this.spendControl();
      default:
        return this.spendControl(); // unknown frame types are ignored (RFC 9113, 4.1), within the budget
    }
  }

  private onData(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "DATA on stream 0");
    if (payload.length > this.receiveWindow)
      throw new ConnectionError(ERROR_CODE.FLOW_CONTROL_ERROR, "DATA past the connection window");
    this.receiveWindow -= payload.length;
    this.receivedUnacknowledged += payload.length;
    const stream = this.streams.get(id);
    if (!stream) {
      this.checkNotIdle(id, "DATA");
      return; // a stream already closed: its window is given back with the connection's
    }
    if (stream.remoteClosed) return this.resetStream(id, ERROR_CODE.STREAM_CLOSED);
    if (payload.length > stream.receiveWindow) return this.resetStream(id, ERROR_CODE.FLOW_CONTROL_ERROR);
    stream.receiveWindow -= payload.length;
    stream.receivedUnacknowledged += payload.length;
    let body: Buffer;
    try {
      body = unpad(payload, flags);
    } catch {
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "DATA padding longer than the frame");
    }
    const endStream = (flags & FLAG.END_STREAM) !== 0;
    if (body.length === 0 && !endStream) this.spendControl();
    if (stream.answered) {
      if (endStream) stream.endRemote();
      else stream.discard(body.length);
      return;
    }
    stream.call?.data(body);
    if (this.streams.get(id) !== stream) return;
    this.countHeld(stream);
    if (this.inboundHeld > this.inboundHeldMax) {
      stream.call?.finish({
        code: Status.RESOURCE_EXHAUSTED,
        details: `the requests in progress on this connection hold over ${this.inboundHeldMax} bytes: send fewer large ones at once`,
      });
      if (this.streams.get(id) === stream) this.countHeld(stream);
      return;
    }
    if (endStream) {
      stream.endRemote();
      // A request whose call waits for its turn is held the while (ServerCall.heldBytes).
      if (this.streams.get(id) === stream) this.countHeld(stream);
    } else if (stream.receivedUnacknowledged >= H2_LIMITS.receiveWindowBytes / 2) {
      this.output.push(encodeFrame(FRAME.WINDOW_UPDATE, 0, id, uint32Payload(stream.receivedUnacknowledged)));
      stream.receiveWindow += stream.receivedUnacknowledged;
      stream.receivedUnacknowledged = 0;
    }
  }

  /** What the stream's call holds now, in the connection's sum. */
  private countHeld(stream: H2Stream): void {
    const held = stream.call?.heldBytes ?? 0;
    this.inboundHeld += held - stream.inboundHeld;
    stream.inboundHeld = held;
  }

  /**
   * The connection's window back to the client as its DATA is read: what the calls hold is bounded
   * by `inboundHeldMax` instead (withholding the window would let a few partial requests stall all
   * the others for good).
   */
  private giveBackConnectionWindow(): void {
    if (this.receivedUnacknowledged < H2_LIMITS.receiveWindowBytes / 2) return;
    this.output.push(encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(this.receivedUnacknowledged)));
    this.receiveWindow += this.receivedUnacknowledged;
    this.receivedUnacknowledged = 0;
  }

  private onHeaders(flags: number, id: number, payload: Buffer): void {
    if (id === 0 || id % 2 === 0)
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, `HEADERS on stream ${id}, not one a client opens`);
    let block: Buffer;
    try {
      block = unpad(payload, flags);
    } catch {
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "HEADERS padding longer than the frame");
    }
    if (flags & FLAG.PRIORITY) {
      if (block.length < 5)
        throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "HEADERS too short for its priority");
      block = block.subarray(5);
    }
    this.continuing = { id, fragments: [block], bytes: 0, frames: 0, endStream: (flags & FLAG.END_STREAM) !== 0 };
    this.addFragment(flags, EMPTY);
  }

  /** A CONTINUATION of the block in progress (onFrame checked its stream). */
  private onContinuation(flags: number, payload: Buffer): void {
    if (!this.continuing) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "CONTINUATION without a header block");
    this.addFragment(flags, payload);
  }

  private addFragment(flags: number, fragment: Buffer): void {
    const block = this.continuing!;
    if (fragment.length > 0) block.fragments.push(fragment);
    block.frames++;
    block.bytes += block.frames === 1 ? block.fragments[0]!.length : fragment.length;
    if (block.bytes > H2_LIMITS.headerBlockBytesMax)
      throw new ConnectionError(ERROR_CODE.COMPRESSION_ERROR, "header block too large");
    if (block.frames > H2_LIMITS.headerBlockFramesMax)
      throw new ConnectionError(ERROR_CODE.ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
    if (flags & FLAG.END_HEADERS) this.endHeaderBlock();
  }

  private endHeaderBlock(): void {
    const { id, fragments, endStream } = this.continuing!;
    this.continuing = undefined;
    let headers: ReturnType<HpackDecoder["decodeWithin"]>;
    try {
      const block = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
      headers = this.decoder.decodeWithin(block, H2_LIMITS.headerListBytesMax);
    } catch {
      throw new ConnectionError(ERROR_CODE.COMPRESSION_ERROR, "header block does not decode");
    }
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: they end its side (gRPC clients send none).
      if (!endStream) return this.resetStream(id, ERROR_CODE.PROTOCOL_ERROR);
      existing.endRemote();
      return;
    }
    if (id <= this.lastStreamId)
      throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, `HEADERS on stream ${id}, already used`);
    this.lastStreamId = id;
    // After GOAWAY, streams past the last one it names are not processed (the client retries them elsewhere).
    if (this.goingAway) return;
    if (this.streams.size >= H2_LIMITS.concurrentStreamsMax) return this.resetStream(id, ERROR_CODE.REFUSED_STREAM);
    if (headers === undefined || headers.length > H2_LIMITS.headersPerStreamMax)
      return this.resetStream(id, ERROR_CODE.ENHANCE_YOUR_CALM);
    const stream = new H2Stream(id, this, this.peerInitialWindow, H2_LIMITS.receiveWindowBytes);
    this.streams.set(id, stream);
    this.dispatcher.open(stream, headers);
    if (endStream && this.streams.get(id) === stream) stream.endRemote();
  }

  private onReset(id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "RST_STREAM of a wrong size");
    const stream = this.streams.get(id);
    if (!stream) return this.checkNotIdle(id, "RST_STREAM");
    // Rapid reset: streams opened only to be reset cost a handler each, and free their slot at once.
    this.spendReset();
    stream.abandon();
  }

  private onSettings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & FLAG.ACK) {
      if (payload.length !== 0) throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "SETTINGS of a wrong size");
    this.settingsSeen = true;
    this.spendControl();
    for (const [setting, value] of readSettings(payload)) {
      if (setting === SETTING.INITIAL_WINDOW_SIZE) {
        if (value > WINDOW_BYTES_MAX)
          throw new ConnectionError(ERROR_CODE.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large");
        // The change applies to the streams open too (RFC 9113, 6.9.2).
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          if (!stream.addSendWindow(delta))
            throw new ConnectionError(ERROR_CODE.FLOW_CONTROL_ERROR, "a stream window past 2^31-1");
        }
      } else if (setting === SETTING.MAX_FRAME_SIZE) {
        if (value < DEFAULT_FRAME_PAYLOAD_MAX || value > 0xff_ffff)
          throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
        this.peerFramePayloadMax = value;
      } else if (setting === SETTING.ENABLE_PUSH && value > 1) {
        throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH neither 0 nor 1");
      }
    }
    this.output.push(SETTINGS_ACK);
    this.pumpWaiting();
    this.admitWaiting();
  }

  private onPing(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "PING of a wrong size");
    if (flags & FLAG.ACK) {
      this.pingSentMs = undefined;
      return;
    }
    this.spendControl();
    this.output.push(encodeFrame(FRAME.PING, FLAG.ACK, 0, payload));
  }

  private onWindowUpdate(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ERROR_CODE.FRAME_SIZE_ERROR, "WINDOW_UPDATE of a wrong size");
    const increment = payload.readUInt32BE(0) & WINDOW_BYTES_MAX;
    if (id === 0) {
      if (increment === 0) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.sendWindow += increment;
      if (this.sendWindow > WINDOW_BYTES_MAX)
        throw new ConnectionError(ERROR_CODE.FLOW_CONTROL_ERROR, "the connection window past 2^31-1");
      this.pumpWaiting();
      this.admitWaiting();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return this.checkNotIdle(id, "WINDOW_UPDATE");
    if (increment === 0) return this.resetStream(id, ERROR_CODE.PROTOCOL_ERROR);
    if (!stream.addSendWindow(increment)) return this.resetStream(id, ERROR_CODE.FLOW_CONTROL_ERROR);
    stream.pump();
    this.admitWaiting();
  }

  /** The streams waiting for window, in the order they began to wait, while there is some. */
  private pumpWaiting(): void {
    if (this.waitingForWindow.size === 0) return;
    const waiting = [...this.waitingForWindow];
    this.waitingForWindow.clear();
    for (const stream of waiting) stream.pump();
  }

  /** A frame that names a stream the client never opened is a connection error (RFC 9113, 5.1: idle). */
  private checkNotIdle(id: number, what: string): void {
    if (id > this.lastStreamId) throw new ConnectionError(ERROR_CODE.PROTOCOL_ERROR, `${what} on idle stream ${id}`);
  }

  /**
   * RST_STREAM for a stream error the client made (RFC 9113, 5.4.2). It draws on the rapid-reset
   * budget as the client's own resets do: a client can have the server reset its streams as surely
   * as reset them itself — a WINDOW_UPDATE of 0 does it — and so start and kill calls without end
   * (MadeYouReset, CVE-2025-8671; nghttp2 counts such stream errors against a budget of its own, its
   * "glitches", since 1.67). What the server resets of its own accord is not counted: an answer that
   * does not fit the output bound, a Watch stream stuck, a request body that goes on after its answer.
   */
  private resetStream(id: number, code: number): void {
    this.spendReset();
    const stream = this.streams.get(id);
    if (stream) stream.reset(code);
    else this.output.push(encodeFrame(FRAME.RST_STREAM, 0, id, uint32Payload(code)));
  }

  private spendReset(): void {
    if (!this.resets.spend()) throw new ConnectionError(ERROR_CODE.ENHANCE_YOUR_CALM, "too many streams reset");
  }

  private spendControl(): void {
    if (!this.controlFrames.spend()) throw new ConnectionError(ERROR_CODE.ENHANCE_YOUR_CALM, "too many control frames");
  }
}

function goaway(lastStreamId: number, code: number, debug: string): Buffer {
  const payload = Buffer.alloc(8 + Buffer.byteLength(debug, "latin1"));
  payload.writeUInt32BE(lastStreamId, 0);
  payload.writeUInt32BE(code, 4);
  payload.write(debug, 8, "latin1");
  return encodeFrame(FRAME.GOAWAY, 0, 0, payload);
}
