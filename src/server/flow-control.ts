import type { Http2SecureServer, Http2Server } from "node:http2";
import type { Server } from "@grpc/grpc-js";

/**
 * The HTTP/2 receive windows of each connection and of each of its streams, widened from the
 * protocol's 64 KiB to 1 MiB.
 *
 * grpc-js holds a call's data until its handler reads it, and that data counts against the
 * connection's window. At 64 KiB, 64 batches of 10 keys in flight on one connection (80 KiB) used it
 * up, and Bun's HTTP/2 client then gave each freed byte to other streams first: a request whose
 * headers had reached the server waited for its data until the load stopped — 9.7 s in a 10 s run,
 * about one request in two thousand (test/server/flow-control.test.ts). Go's gRPC grows its windows
 * by estimating the bandwidth-delay product, up to 16 MiB.
 *
 * Both windows move together. When the connection's window was the wider one (1 MiB over 64 or
 * 256 KiB), Bun's HTTP/2 server stopped granting window to a single stream carrying more than its
 * own, and a large request waited forever (the limit tests of test/integration/api.test.ts). The
 * price: a flood of large requests comes in faster. 160 refused requests of 1 MiB peaked at about
 * 300 MiB of RSS instead of 200, and went back as before (test/hardening/flood.test.ts). 1 MiB holds 64 requests of 16 KiB in flight on
 * one connection. Beyond that, requests wait for window again, and what a client may send ahead of
 * the server stays bounded per connection.
 */
export const RECEIVE_WINDOW_BYTES = 1024 * 1024;

/** Widens the windows of every connection the server accepts from now on. */
export function widenReceiveWindows(server: Server): void {
  // grpc-js keeps its HTTP/2 servers private, and a private field may change in any release: so
  // package.json pins @grpc/grpc-js to an exact version. Without them (a later grpc-js), the
  // defaults stay, and the flow-control test says so.
  const http2Servers = (server as unknown as { http2Servers?: Map<Http2Server | Http2SecureServer, unknown> })
    .http2Servers;
  for (const http2Server of http2Servers?.keys() ?? []) {
    http2Server.on("session", (session) => {
      session.settings({ initialWindowSize: RECEIVE_WINDOW_BYTES });
      session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
    });
  }
}
