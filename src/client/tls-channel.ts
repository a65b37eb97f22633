import { isIP } from "node:net";
import { checkServerIdentity } from "node:tls";
import { type ChannelCredentials, type ChannelOptions, credentials } from "@grpc/grpc-js";
import type { ClientTls } from "./client.ts";

/**
 * Bun refuses an IP address as the TLS server name (SNI), which grpc-js sets from the target. For an
 * IP target the name sent is this placeholder, which no certificate is checked against: the
 * certificate is still checked against the IP itself, as RFC 6066 says (no SNI for IP literals).
 */
const SNI_FOR_IP_TARGETS = "homekv-ip-target.invalid";

export function tlsChannel(
  address: string,
  tls: ClientTls,
): { channelCredentials: ChannelCredentials; channelOptions: ChannelOptions } {
  const host = hostOf(address);
  const verifyAs = tls.serverName ?? host;
  const channelCredentials = credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, {
    checkServerIdentity: (_sentName, certificate) => checkServerIdentity(verifyAs, certificate),
  });
  const sni = isIP(verifyAs) ? SNI_FOR_IP_TARGETS : verifyAs;
  return { channelCredentials, channelOptions: sni === host ? {} : { "grpc.ssl_target_name_override": sni } };
}

/** The host of `host:port`, without the brackets of an IPv6 literal. */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  if (bracketed) return bracketed[1]!;
  const colon = address.lastIndexOf(":");
  return colon === -1 ? address : address.slice(0, colon);
}
