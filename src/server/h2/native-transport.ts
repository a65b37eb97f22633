import type { Socket, TCPSocketListener } from "bun";
import { formatAddress } from "../../address.ts";
import { describeError, HomeKvError } from "../../errors.ts";
import { hardCapBytes } from "../request-size.ts";
import type { Transport, TransportOptions } from "../transport.ts";
import { H2ServerConnection } from "./connection.ts";
import { Dispatcher } from "./server-call.ts";

interface SocketData {
  connection: H2ServerConnection | undefined;
}

/** The ALPN protocol list in its wire form (RFC 7301: each name after its length): h2 alone. */
const ALPN_H2 = Buffer.from("\x02h2", "latin1");

/** How often idle connections and keepalives are checked, within these bounds. */
const SWEEP_MS_MIN = 50;
const SWEEP_MS_MAX = 5_000;

/**
 * HomeKV's own gRPC server transport (`--grpc-server native`): HTTP/2 (src/server/h2/connection.ts)
 * over Bun's TCP sockets, or TLS ones offering only h2 by ALPN (client certificates required when a
 * client CA is set). Connections idle for the idle timeout are closed (GOAWAY), and each is pinged
 * once its client was silent for the keepalive interval: one that does not answer within the
 * keepalive timeout is dropped.
 */
export async function startNativeTransport(options: TransportOptions): Promise<Transport> {
  const dispatcher = new Dispatcher({
    services: options.services,
    auth: options.auth,
    rpcStats: options.rpcStats,
    messageBytesCap: hardCapBytes(options.limits),
    onBug: options.onBug,
  });
  const connections = new Set<H2ServerConnection>();
  let allClosed: (() => void) | undefined;
  const forget = (connection: H2ServerConnection) => {
    connections.delete(connection);
    if (connections.size === 0) allClosed?.();
  };
  const { tls } = options;
  let listener: TCPSocketListener<SocketData>;
  try {
    listener = Bun.listen<SocketData>({
      hostname: options.host,
      port: options.port,
      ...(tls
        ? {
            tls: {
              cert: tls.certChain,
              key: tls.privateKey,
              ALPNProtocols: ALPN_H2,
              ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
            },
          }
        : {}),
      socket: {
        open(socket: Socket<SocketData>) {
          // Over TLS, HTTP/2 only by ALPN (RFC 9113, 3.2): a client that did not ask for h2 speaks something else.
          if (tls && socket.alpnProtocol !== "h2") {
            socket.end();
            return;
          }
          socket.setNoDelay(true);
          const connection = new H2ServerConnection(socket, dispatcher, forget);
          connections.add(connection);
          socket.data = { connection };
        },
        data: (socket, data) => socket.data.connection?.receive(data),
        drain: (socket) => socket.data.connection?.drain(),
        close: (socket) => socket.data?.connection?.socketClosed(),
        // A reset or a failed TLS record: the close that follows cancels the calls.
        error: () => {},
      },
    });
  } catch (error) {
    throw new HomeKvError(
      "E_LISTEN",
      `cannot listen on ${formatAddress(options.host, options.port)}: ${listenReason(error)}`,
    );
  }

  const sweepMs = Math.min(
    SWEEP_MS_MAX,
    Math.max(SWEEP_MS_MIN, Math.min(options.connectionIdleTimeoutMs, options.keepaliveTimeoutMs) / 4),
  );
  const sweep = setInterval(() => {
    const nowMs = performance.now();
    for (const connection of [...connections]) {
      if (connection.openStreams > 0) connection.lastActiveMs = nowMs;
      else if (nowMs - connection.lastActiveMs >= options.connectionIdleTimeoutMs) {
        connection.shutdown("idle");
        continue;
      }
      if (connection.pingSentMs !== undefined) {
        if (nowMs - connection.pingSentMs >= options.keepaliveTimeoutMs) connection.close();
      } else if (nowMs - connection.lastReceivedMs >= options.keepaliveIntervalMs) connection.ping(nowMs);
    }
  }, sweepMs);
  sweep.unref();

  return {
    port: listener.port,
    async shutdown() {
      listener.stop(false);
      const closed = new Promise<void>((resolve) => {
        allClosed = resolve;
      });
      for (const connection of [...connections]) connection.shutdown();
      if (connections.size > 0) await closed;
      clearInterval(sweep);
      listener.stop(true);
    },
  };
}

function listenReason(error: unknown): string {
  const code = (error as { code?: string }).code ?? "";
  const message = describeError(error);
  if (code === "EADDRINUSE" || message.includes("EADDRINUSE") || message.includes("in use"))
    return "address already in use";
  if (code === "EADDRNOTAVAIL" || message.includes("EADDRNOTAVAIL")) return "address not available on this machine";
  if (code === "EACCES" || message.includes("EACCES")) return "permission denied";
  return message;
}
