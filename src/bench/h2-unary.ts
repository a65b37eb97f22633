import http2 from "node:http2";
import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";
import type { ClientTls } from "../client/client.ts";

/**
 * A lean unary gRPC caller over node:http2, for load generation only. The full grpc-js client
 * spends more CPU per call than the server it measures (on one 2-core machine the load generator
 * and the server share the cores), so the benchmark frames calls itself: one POST per call, the
 * 5-byte gRPC message prefix, status from the trailers. The same caller drives any gRPC server
 * (HomeKV, etcd), so comparisons are fair.
 */
export interface UnaryResult {
  /** gRPC status code; 0 is OK. -1: the transport failed before a status arrived. */
  status: number;
  message: string;
  body: Buffer;
}

export interface H2Pool {
  call(path: string, message: Uint8Array): Promise<UnaryResult>;
  close(): void;
}

const DEADLINE_EXCEEDED = 4;

export interface H2PoolOptions {
  timeoutMs?: number;
  tls?: ClientTls;
  /** Sent as a bearer token with every call. */
  token?: string;
}

export function connectH2Pool(address: string, connections: number, options: H2PoolOptions = {}): H2Pool {
  const { timeoutMs = 30_000, tls, token } = options;
  const sessions = Array.from({ length: connections }, () => {
    const session = tls ? http2.connect(`https://${address}`, secureOptions(address, tls)) : http2.connect(`http://${address}`);
    session.on("error", () => {}); // reported per call through the stream's error
    return session;
  });
  let next = 0;
  return {
    call(path, message) {
      const session = sessions[next++ % sessions.length]!;
      const body = Buffer.allocUnsafe(5 + message.byteLength);
      body[0] = 0;
      body.writeUInt32BE(message.byteLength, 1);
      body.set(message, 5);
      return new Promise((resolve) => {
        const chunks: Buffer[] = [];
        let status: number | undefined;
        let statusMessage = "";
        const takeStatus = (headers: http2.IncomingHttpHeaders) => {
          if (headers["grpc-status"] === undefined) return;
          status = Number(headers["grpc-status"]);
          statusMessage = decodeURIComponent(String(headers["grpc-message"] ?? ""));
        };
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
          "grpc-timeout": `${timeoutMs}m`,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        });
        // Every call ends: a server that never answers costs one timeout, not a hung benchmark.
        const timer = setTimeout(() => {
          status = DEADLINE_EXCEEDED;
          statusMessage = `no answer within ${timeoutMs} ms`;
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, timeoutMs);
        stream.on("response", takeStatus); // a trailers-only answer carries its status here
        stream.on("trailers", takeStatus);
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        let transportError = "stream closed without a grpc-status";
        stream.on("error", (error) => {
          transportError = error.message;
        });
        // "close" comes last whatever happened, exactly once: settle there.
        stream.on("close", () => {
          clearTimeout(timer);
          if (status === undefined) resolve({ status: -1, message: transportError, body: Buffer.alloc(0) });
          else resolve({ status, message: statusMessage, body: Buffer.concat(chunks).subarray(5) });
        });
        stream.end(body);
      });
    },
    close() {
      for (const session of sessions) session.close();
    },
  };
}

/** TLS like the HomeKV client's (src/client/tls-channel.ts): the certificate checked against the host or `serverName`. */
function secureOptions(address: string, tls: ClientTls): http2.SecureClientSessionOptions {
  const verifyAs = tls.serverName ?? new URL(`https://${address}`).hostname.replace(/^\[|\]$/g, "");
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    ...(isIP(verifyAs) ? {} : { servername: verifyAs }),
    checkServerIdentity: (_name, certificate) => checkServerIdentity(verifyAs, certificate),
  };
}
