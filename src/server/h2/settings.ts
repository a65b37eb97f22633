import { DEFAULT_FRAME_PAYLOAD_MAX, SETTING, settingsPayload } from "../../h2/frames.ts";
import { DEFAULT_TABLE_BYTES } from "../../h2/hpack.ts";
import { RECEIVE_WINDOW_BYTES } from "../flow-control.ts";

/**
 * What the native server announces in its SETTINGS, and the limits it holds each connection to.
 * Every number bounds what one client can make the server hold or do.
 */
export const H2_LIMITS = {
  /** Streams a client may have open at once; more are refused (REFUSED_STREAM). */
  concurrentStreamsMax: 1_000,
  /** Each stream's receive window and, widened at the start, the connection's (src/server/flow-control.ts). */
  receiveWindowBytes: RECEIVE_WINDOW_BYTES,
  /** The largest frame payload a client may send (the protocol's default: nothing asks for more). */
  framePayloadMax: DEFAULT_FRAME_PAYLOAD_MAX,
  /** The HPACK table the client's encoder may use. */
  headerTableBytes: DEFAULT_TABLE_BYTES,
  /** A header block (HEADERS and its CONTINUATIONs) over this closes the connection (COMPRESSION_ERROR), as Bun's and Node's servers do. */
  headerBlockBytesMax: 64 * 1024,
  /** A header block spread over more frames than this is a flood of CONTINUATIONs (CVE-2024-27316): ENHANCE_YOUR_CALM. */
  headerBlockFramesMax: 64,
  /** The decoded headers of one stream: more bytes (or more headers) reset that stream (ENHANCE_YOUR_CALM). */
  headerListBytesMax: 64 * 1024,
  headersPerStreamMax: 128,
  /** Bytes of request messages not yet whole that one connection may hold: at least this, and four at the hard cap. */
  inboundBytesMin: 64 * 1024 * 1024,
  /**
   * Streams reset — by the client while their calls run (rapid reset, CVE-2023-44487), or by the
   * server for a stream error of the client's making (MadeYouReset, CVE-2025-8671: a WINDOW_UPDATE of
   * 0, DATA past the window or after END_STREAM, a stream past MAX_CONCURRENT_STREAMS) — and frames
   * that cost the server an answer or work without a call (SETTINGS, PING, PRIORITY, empty DATA,
   * unknown frames): each a budget of `burst`, given back at `perSecond`; a client past one gets
   * GOAWAY ENHANCE_YOUR_CALM.
   */
  resets: { burst: 1_000, perSecond: 200 },
  controlFrames: { burst: 10_000, perSecond: 2_000 },
  /**
   * Bytes of answers held for a connection whose client does not read (written and not taken by
   * the socket, plus answers waiting for window): once it holds this much, no unary call starts
   * and an answer that comes is dropped, its stream reset, so a client that stops reading cannot
   * make the server hold more than this and the answer that crossed it (--max-response-bytes at
   * most). The answer that crosses it is kept: the 64 answers of 1 MiB that `handlersRunningMax`
   * calls of the largest default value make are not refused for a client slow to read them.
   */
  outputBytesMax: 64 * 1024 * 1024,
  /**
   * Unary calls one connection has under way at once, each from its handler's start until its
   * answer has been taken by the socket (or its stream is gone); the calls past it, and those that
   * come while the answers held have reached `outputBytesMax`, wait their turn without running
   * (src/server/h2/call-admission.ts). An answer is built before its size is known: without
   * this, every call of a burst built its answer before the bound could refuse it. 64 answers of the
   * default largest value (1 MiB) are the output bound; 64 is also the concurrency the benchmarks use.
   */
  handlersRunningMax: 64,
  /**
   * Bytes written and not yet taken by the socket past which the connection processes no more of
   * its client's frames, and stops reading its socket, until the socket has taken them
   * (backpressure, as h2o stops reading past a soft limit on its output buffer). Every frame the
   * server makes of its own accord — RST_STREAM, PING and SETTINGS acknowledgements, WINDOW_UPDATE,
   * answers decided from the headers — answers a frame of the client's: a client that does not read
   * then holds this, and what the last frame read asked for, not one frame per frame it sends.
   */
  outputPauseBytes: 1024 * 1024,
} as const;

export const SERVER_SETTINGS_PAYLOAD = settingsPayload([
  [SETTING.MAX_CONCURRENT_STREAMS, H2_LIMITS.concurrentStreamsMax],
  [SETTING.INITIAL_WINDOW_SIZE, H2_LIMITS.receiveWindowBytes],
  [SETTING.MAX_HEADER_LIST_SIZE, H2_LIMITS.headerListBytesMax],
]);
