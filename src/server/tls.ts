import { createSecureContext } from "node:tls";
import { ServerCredentials } from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";
import { readPem } from "../pem.ts";

/** PEM files of a server's TLS identity, and the CA its clients' certificates must chain to (mTLS). */
export interface ServerTls {
  certChain: Buffer;
  privateKey: Buffer;
  /** When set, every client must present a certificate signed by this CA. */
  clientCa?: Buffer;
}

/** The TLS identity from its files, checked now (a key that does not match its certificate, say) rather than at the first handshake. */
export function loadServerTls(paths: { cert: string; key: string; clientCa?: string | undefined }): ServerTls {
  const tls: ServerTls = { certChain: readPem("--tls-cert", paths.cert), privateKey: readPem("--tls-key", paths.key) };
  if (paths.clientCa !== undefined) tls.clientCa = readPem("--tls-client-ca", paths.clientCa);
  try {
    createSecureContext({ cert: tls.certChain, key: tls.privateKey, ...(tls.clientCa ? { ca: tls.clientCa } : {}) });
  } catch (error) {
    throw new HomeKvError(
      "E_CONFIG",
      `--tls-cert ${paths.cert} with --tls-key ${paths.key}: ${error instanceof Error ? error.message : error}`,
    );
  }
  return tls;
}

export function serverCredentials(tls: ServerTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.clientCa ?? null,
    [{ cert_chain: tls.certChain, private_key: tls.privateKey }],
    tls.clientCa !== undefined,
  );
}
