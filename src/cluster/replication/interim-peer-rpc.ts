import { HomeKvError } from "../../errors.ts";
import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import type { PeerTransport } from "../transport/types.ts";
import type { PeerRpc } from "./group-view.ts";

/**
 * Request and answer between members, over the peer transport beside the Raft messages — an
 * interim stand-in, with the same interface, for the peer RPC layer being built on main
 * (src/cluster/replication/peer-rpc.ts), which replaces it when it lands. Payloads whose first byte
 * is one of the two below are calls; every other payload (a Raft batch starts with its format
 * version, 1) goes on to the transport's own handler.
 *
 *   call     u8 0xc1 · varint id · string method · u32 length · body
 *   answer   u8 0xc2 · varint id · u8 1 · u32 length · body     (the handler's answer)
 *                                · u8 0 · string code · string message   (the HomeKvError it threw)
 */
const CALL = 0xc1;
const ANSWER = 0xc2;
/** Calls waiting for their answer at most; one more is refused at once. */
const CALLS_IN_FLIGHT_MAX = 1_024;

interface Waiting {
  resolve: (body: Uint8Array) => void;
  reject: (error: HomeKvError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Splits `transport` in two: the transport as Raft sees it (calls taken out), and calls to and from peers. */
export function withPeerRpc(transport: PeerTransport): { transport: PeerTransport; rpc: PeerRpc } {
  const handlers = new Map<string, (from: string, request: Uint8Array) => Promise<Uint8Array>>();
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  let raftHandler: ((from: string, payload: Uint8Array) => void) | undefined;

  const serve = async (from: string, id: number, method: string, body: Uint8Array) => {
    const answer = new ByteWriter().u8(ANSWER).varint(id);
    try {
      const handler = handlers.get(method);
      if (handler === undefined) throw new HomeKvError("E_UNAVAILABLE", `no peer RPC ${method} on ${transport.nodeId}`);
      // The answer first: a handler that throws must leave nothing of a success behind in `answer`.
      const result = await handler(from, body);
      answer.u8(1).bytes(result);
    } catch (error) {
      const refusal = error instanceof HomeKvError ? error : new HomeKvError("E_UNAVAILABLE", String(error));
      answer.u8(0).string(refusal.code).string(refusal.message);
    }
    transport.send(from, answer.written().slice());
  };

  transport.onMessage((from, payload) => {
    if (payload[0] !== CALL && payload[0] !== ANSWER) return raftHandler?.(from, payload);
    try {
      const r = new ByteReader(payload);
      const kind = r.u8();
      const id = r.varint();
      if (kind === CALL) {
        const method = r.string();
        void serve(from, id, method, r.bytesCopy());
        return;
      }
      const call = waiting.get(id);
      if (call === undefined) return; // answered after its timeout
      waiting.delete(id);
      clearTimeout(call.timer);
      if (r.u8() === 1) call.resolve(r.bytesCopy());
      else call.reject(new HomeKvError(r.string() as HomeKvError["code"], r.string()));
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
    }
  });

  const rpc: PeerRpc = {
    call(to, method, request, timeoutMs) {
      if (waiting.size >= CALLS_IN_FLIGHT_MAX)
        return Promise.reject(
          new HomeKvError("E_UNAVAILABLE", `${CALLS_IN_FLIGHT_MAX} peer calls are waiting already`),
        );
      const id = nextId++;
      return new Promise<Uint8Array>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new HomeKvError("E_UNAVAILABLE", `${to} did not answer ${method} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, { resolve, reject, timer });
        transport.send(to, new ByteWriter().u8(CALL).varint(id).string(method).bytes(request).written().slice());
      });
    },
    handle(method, handler) {
      handlers.set(method, handler);
    },
  };
  const raftSide: PeerTransport = {
    nodeId: transport.nodeId,
    address: transport.address,
    addPeer: (nodeId, address) => transport.addPeer(nodeId, address),
    removePeer: (nodeId) => transport.removePeer(nodeId),
    send: (to, payload) => transport.send(to, payload),
    onMessage(handler) {
      raftHandler = handler;
    },
    stats: () => transport.stats(),
    close: () => transport.close(),
  };
  return { transport: raftSide, rpc };
}
