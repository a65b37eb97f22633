import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy on a loopback port standing for one member's view of one peer: the member's
 * --initial-cluster names the proxy's address instead of the peer's, so every byte between the two
 * passes here, and the test can cut the link without root (no firewall, no namespace).
 *
 *   n1 ──dials──▶ proxy(n1→n2) ──▶ n2's peer port
 *   n2 ──dials──▶ proxy(n2→n1) ──▶ n1's peer port
 *
 * The peer transport keeps one connection per pair, dialed by either side, so a partition of a pair
 * cuts both of its proxies. `sever` drops the connections in flight (as a peer that vanished: the
 * sockets are destroyed, nothing more is delivered either way) and refuses new ones until `heal`.
 */
export class LinkProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private isCut = false;

  private constructor(
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  /** Listens on a free loopback port and forwards each connection to 127.0.0.1:`targetPort`. */
  static async open(targetPort: number): Promise<LinkProxy> {
    let proxy: LinkProxy | undefined;
    const server = createServer((inbound) => proxy!.accept(inbound, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the link proxy has no TCP port");
    proxy = new LinkProxy(address.port, server);
    return proxy;
  }

  get severed(): boolean {
    return this.isCut;
  }

  /** Drops every connection through the link and refuses new ones. */
  sever(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(inbound: Socket, targetPort: number): void {
    // A refused dial: accepted and closed at once, as a peer behind a cut link looks to the dialer.
    if (this.isCut) {
      inbound.destroy();
      return;
    }
    const outbound = createConnection({ host: "127.0.0.1", port: targetPort });
    for (const socket of [inbound, outbound]) {
      this.sockets.add(socket);
      // Either end failing or closing ends both: a half-open pair would hide a dead peer.
      socket.on("error", () => {});
      socket.on("close", () => {
        this.sockets.delete(socket);
        inbound.destroy();
        outbound.destroy();
      });
    }
    // pipe() buffers what the other side cannot take yet, so frames pass whole and in order.
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  }
}
