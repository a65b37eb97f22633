import { isIP } from "node:net";
import { type ConnectionOptions, checkServerIdentity } from "node:tls";
import type { ClientTls } from "../client/client.ts";
import { GRPC_MESSAGE_PREFIX_BYTES, grpcMessage } from "../h2/grpc-message.ts";
import { encodeLiterals, type Header } from "../h2/hpack.ts";
import { H2Connection } from "./h2/connection.ts";

/**
 * A lean unary gRPC caller for load generation only. On one 2-core machine the load generator and
 * the server share the cores, so every microsecond the caller spends is taken from the server it
 * measures: the grpc-js client spends more per call than the server, and node:http2's client about
 * half of it. This one frames calls itself over its own HTTP/2 connection (src/bench/h2/): one POST
 * per call, the 5-byte gRPC message prefix, status from the trailers, header blocks built once per
 * path, and a turn's frames in one socket write. The same caller drives any gRPC server (HomeKV,
 * etcd), so comparisons stay fair.
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
  const { hostname, port } = new URL(`http://${address}`);
  const host = hostname.replace(/^\[|\]$/g, "");
  const pool = Array.from(
    { length: connections },
    () => new H2Connection({ host, port: Number(port), ...(tls ? { tls: secureOptions(host, tls) } : {}) }),
  );
  const blocks = new Map<string, Uint8Array>();
  const headerBlock = (path: string) => {
    let block = blocks.get(path);
    if (!block) {
      const headers: Header[] = [
        [":method", "POST"],
        [":scheme", tls ? "https" : "http"],
        [":path", path],
        [":authority", address],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["grpc-timeout", `${timeoutMs}m`],
        ...(token === undefined ? [] : ([["authorization", `Bearer ${token}`]] as Header[])),
      ];
      block = encodeLiterals(headers);
      blocks.set(path, block);
    }
    return block;
  };
  // Every call ends: a server that never answers costs one timeout, not a hung benchmark. One sweep
  // for all calls (streams are kept oldest first), instead of a timer per call.
  const sweep = setInterval(
    () => {
      const now = performance.now();
      for (const connection of pool) {
        for (const { id, startedMs } of connection.openStreams()) {
          if (now - startedMs < timeoutMs) break;
          connection.cancel(id, `no answer within ${timeoutMs} ms`);
        }
      }
    },
    Math.min(1_000, Math.max(10, timeoutMs / 10)),
  );
  sweep.unref();
  let next = 0;
  return {
    async call(path, message) {
      const connection = pool[next++ % pool.length]!;
      const result = await connection.request(headerBlock(path), grpcMessage(message)).result;
      // Only the sweep below cancels streams: a cancelled call is one that timed out.
      if (!result.ok)
        return { status: result.cancelled ? DEADLINE_EXCEEDED : -1, message: result.error, body: Buffer.alloc(0) };
      // A trailers-only answer (an error before any message) carries its status in the headers.
      const status = headerValue(result.trailers, "grpc-status") ?? headerValue(result.headers, "grpc-status");
      if (status === undefined)
        return { status: -1, message: "stream closed without a grpc-status", body: Buffer.alloc(0) };
      const statusMessage =
        headerValue(result.trailers, "grpc-message") ?? headerValue(result.headers, "grpc-message") ?? "";
      return {
        status: Number(status),
        message: percentDecoded(statusMessage),
        body: result.body.subarray(GRPC_MESSAGE_PREFIX_BYTES),
      };
    },
    close() {
      clearInterval(sweep);
      for (const connection of pool) connection.close();
    },
  };
}

function headerValue(headers: readonly Header[], name: string): string | undefined {
  return headers.find(([key]) => key === name)?.[1];
}

/** grpc-message is percent-encoded UTF-8; a malformed one is shown as it came. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** TLS like the HomeKV client's (src/client/tls-channel.ts): the certificate checked against the host or `serverName`. */
function secureOptions(host: string, tls: ClientTls): ConnectionOptions {
  const verifyAs = tls.serverName ?? host;
  return {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    ...(isIP(verifyAs) ? {} : { servername: verifyAs }),
    checkServerIdentity: (_name, certificate) => checkServerIdentity(verifyAs, certificate),
  };
}
