import { formatAddress } from "../../address.ts";
import { HomeKvError } from "../../errors.ts";

export interface PeerAddress {
  host: string;
  port: number;
  /** As formatAddress writes it. */
  text: string;
}

/** "host:port" of a peer port, IPv6 literals in brackets ("[::1]:20011"). */
export function parsePeerAddress(address: string): PeerAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  if (!match || !(port > 0 && port < 65_536))
    throw new HomeKvError("E_CONFIG", `peer address ${JSON.stringify(address)} is not host:port, like 127.0.0.1:20011`);
  const host = match[1] ?? match[2]!;
  return { host, port, text: formatAddress(host, port) };
}
