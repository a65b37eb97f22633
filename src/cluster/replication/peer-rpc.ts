import { type ErrorCode, HomeKvError, knownErrorCode, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { realTimers, type Timers } from "../../timers.ts";
import { CHANNEL_RPC_REQUEST, CHANNEL_RPC_RESPONSE, type PeerChannels } from "./peer-channels.ts";

/**
 * Request and response between members, over the peer transport (authenticated, one connection per
 * pair). Frozen format:
 *
 *   request    u8 2 · varint call id · string method · bytes body
 *   response   u8 3 · varint call id · u8 0 · bytes body                       (answered)
 *              u8 3 · varint call id · u8 1 · string error code · string message (refused)
 *
 * Best effort like the transport under it: a request or response lost with a connection is a call
 * that times out. Bodies are each method's own format.
 */
export interface PeerRpc {
  /**
   * Calls `method` on member `to`. Rejects with the HomeKvError the handler threw, or a NoAnswerError
   * (E_UNAVAILABLE) when no answer came within `timeoutMs` (the call may or may not have run there).
   */
  call(to: string, method: string, request: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Serves `method`: a HomeKvError thrown goes back to the caller; anything else is reported as a bug. */
  handle(method: string, handler: (from: string, request: Uint8Array) => Promise<Uint8Array>): void;
  /** Fails every call waiting for an answer with a NoAnswerError, and refuses new ones (shutdown). */
  close(): void;
}

/** A call that got no answer in time: it may or may not have run on the other member. */
export class NoAnswerError extends HomeKvError {
  constructor(message: string) {
    super("E_UNAVAILABLE", message);
  }
}

/**
 * Calls waiting at once for one member; past it a call to it is refused rather than queued without
 * bound. Per member: calls held by a slow one must not keep this node from asking the others
 * (their failure detector's pings among them).
 */
const CALLS_IN_FLIGHT_MAX = 10_000;

interface PendingCall {
  to: string;
  resolve: (body: Uint8Array) => void;
  reject: (error: unknown) => void;
  cancelTimer: () => void;
}

export function createPeerRpc(
  channels: PeerChannels,
  options: {
    onBug: (error: unknown) => void;
    log?: (line: string) => void;
    timers?: Timers;
    /** Draws where this process's call ids start (default Math.random). */
    random?: () => number;
  },
): PeerRpc {
  const { transport } = channels;
  const timers = options.timers ?? realTimers;
  const handlers = new Map<string, (from: string, request: Uint8Array) => Promise<Uint8Array>>();
  const pending = new Map<number, PendingCall>();
  /** Calls waiting per member. */
  const waitingFor = new Map<string, number>();
  // Call ids start at a random point below 2^48: a member restarted numbers its calls afresh, and
  // the answers to its former self's calls that a peer queued while it was down reach it once it
  // connects. Numbered from 1 again, they were taken for the answers to its own calls (the
  // partitioned simulation found a write answered with a ping's empty body).
  let nextId = 1 + Math.floor((options.random ?? Math.random)() * 2 ** 48);
  let closed = false;

  const answer = (to: string, id: number, outcome: { body: Uint8Array } | { code: ErrorCode; message: string }) => {
    const w = new ByteWriter().u8(CHANNEL_RPC_RESPONSE).varint(id);
    if ("body" in outcome) w.u8(0).bytes(outcome.body);
    else w.u8(1).string(outcome.code).string(outcome.message);
    transport.send(to, w.written().slice());
  };

  channels.on(CHANNEL_RPC_REQUEST, (from, payload) => {
    let id: number;
    let method: string;
    let body: Uint8Array;
    try {
      const r = new ByteReader(payload);
      r.u8();
      id = r.varint();
      method = r.string();
      body = r.bytesCopy();
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      options.log?.(`dropped a peer request from ${from} that does not decode: ${error.message}`);
      return;
    }
    const handler = handlers.get(method);
    if (handler === undefined) {
      answer(from, id, { code: "E_INVALID", message: `no peer method ${method} on ${transport.nodeId}` });
      return;
    }
    handler(from, body).then(
      (response) => answer(from, id, { body: response }),
      (error: unknown) => {
        if (error instanceof HomeKvError) answer(from, id, { code: error.code, message: error.message });
        else {
          options.onBug(error);
          answer(from, id, { code: "E_UNAVAILABLE", message: `internal error on member ${transport.nodeId}` });
        }
      },
    );
  });

  channels.on(CHANNEL_RPC_RESPONSE, (from, payload) => {
    let id: number;
    let outcome: { body: Uint8Array } | HomeKvError;
    try {
      const r = new ByteReader(payload);
      r.u8();
      id = r.varint();
      if (r.u8() === 0) outcome = { body: r.bytesCopy() };
      else {
        const code = r.string();
        const message = r.string();
        outcome = new HomeKvError(knownErrorCode(code), message);
      }
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      options.log?.(`dropped a peer response from ${from} that does not decode: ${error.message}`);
      return;
    }
    const call = pending.get(id);
    // Late (timed out), or not ours: a response only counts from the member that was asked.
    if (call === undefined || call.to !== from) return;
    settle(id);
    call.cancelTimer();
    if (outcome instanceof HomeKvError) call.reject(outcome);
    else call.resolve(outcome.body);
  });

  return {
    call(to, method, request, timeoutMs) {
      if (closed) return Promise.reject(new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE));
      if ((waitingFor.get(to) ?? 0) >= CALLS_IN_FLIGHT_MAX)
        return Promise.reject(
          new HomeKvError("E_UNAVAILABLE", `${CALLS_IN_FLIGHT_MAX} calls to member ${to} are waiting already`),
        );
      const id = nextId++;
      return new Promise<Uint8Array>((resolve, reject) => {
        const cancelTimer = timers.after(timeoutMs, () => {
          settle(id);
          reject(new NoAnswerError(`member ${to} did not answer ${method} within ${timeoutMs} ms`));
        });
        pending.set(id, { to, resolve, reject, cancelTimer });
        waitingFor.set(to, (waitingFor.get(to) ?? 0) + 1);
        transport.send(
          to,
          new ByteWriter().u8(CHANNEL_RPC_REQUEST).varint(id).string(method).bytes(request).written().slice(),
        );
      });
    },
    handle(method, handler) {
      handlers.set(method, handler);
    },
    close() {
      closed = true;
      // Sent, not answered: they may have run there.
      for (const call of pending.values()) {
        call.cancelTimer();
        call.reject(new NoAnswerError(`the member stopped before member ${call.to} answered`));
      }
      pending.clear();
      waitingFor.clear();
    },
  };

  /** Forgets call `id` (answered or timed out). */
  function settle(id: number): void {
    const call = pending.get(id);
    if (call === undefined) return;
    pending.delete(id);
    const left = (waitingFor.get(call.to) ?? 1) - 1;
    if (left === 0) waitingFor.delete(call.to);
    else waitingFor.set(call.to, left);
  }
}
