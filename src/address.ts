/**
 * Where a server listens and a client connects when told nothing else. Here, beside the address
 * helpers, so that client commands know them without loading the server.
 */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 20001;

/** `host:port` as gRPC and people write it, with IPv6 literals in brackets. */
export function formatAddress(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether only this machine can reach a server listening on `host` (0.0.0.0 and :: reach every interface). */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return bare === "localhost" || bare === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
