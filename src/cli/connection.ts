import { DEFAULT_HOST, DEFAULT_PORT, formatAddress } from "../address.ts";
import { type ClientTls, HomeKvClient } from "../client/client.ts";
import { readPem } from "../pem.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

/** The flags every client command shares. */
export const connectionArgs = {
  host: {
    type: "string",
    alias: "H",
    description: `Server host (env HOMEKV_HOST, default ${DEFAULT_HOST})`,
  },
  port: {
    type: "string",
    alias: "p",
    description: `Server port (env HOMEKV_PORT, default ${DEFAULT_PORT})`,
  },
  timeout: {
    type: "string",
    description: "Milliseconds to wait for the server, connecting included (default 5000)",
  },
  json: {
    type: "boolean",
    description: "Print machine-readable JSON on stdout",
  },
  token: {
    type: "string",
    description: "Bearer token for a server that requires one (env HOMEKV_TOKEN)",
  },
  tls: {
    type: "boolean",
    description: "Connect over TLS, trusting the system's CAs (implied by --tls-ca, --tls-cert)",
  },
  "tls-ca": {
    type: "string",
    description: "PEM file of the CA the server's certificate must chain to (env HOMEKV_TLS_CA)",
  },
  "tls-cert": {
    type: "string",
    description: "PEM file of this client's certificate, for mutual TLS",
  },
  "tls-key": {
    type: "string",
    description: "PEM file of this client's private key, for mutual TLS",
  },
  "tls-server-name": {
    type: "string",
    description: "Name the server's certificate must carry (default: the host)",
  },
} as const;

export interface ConnectionFlags {
  host?: string;
  port?: string;
  timeout?: string;
  token?: string;
  tls?: boolean;
  "tls-ca"?: string;
  "tls-cert"?: string;
  "tls-key"?: string;
  "tls-server-name"?: string;
}

/** `host:port` from the flags first, then HOMEKV_HOST / HOMEKV_PORT, then the defaults. */
export function resolveAddress(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): string {
  const host = flags.host || env.HOMEKV_HOST || DEFAULT_HOST;
  const portFlag = flags.port !== undefined ? "--port" : "HOMEKV_PORT";
  const port = parseIntegerFlag(portFlag, flags.port ?? env.HOMEKV_PORT, DEFAULT_PORT, 1, 65_535);
  return formatAddress(host, port);
}

export function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): HomeKvClient {
  const timeoutMs = parseIntegerFlag("--timeout", flags.timeout, 5_000, 1, 3_600_000);
  const token = resolveToken(flags, env);
  const tls = resolveTls(flags, env);
  return new HomeKvClient({
    address: resolveAddress(flags, env),
    timeoutMs,
    ...(token ? { token } : {}),
    ...(tls ? { tls } : {}),
  });
}

export function resolveToken(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flags.token || env.HOMEKV_TOKEN || undefined;
}

/** The TLS settings from the flags and HOMEKV_TLS_CA; undefined for plaintext. */
export function resolveTls(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): ClientTls | undefined {
  const caPath = flags["tls-ca"] ?? env.HOMEKV_TLS_CA;
  const certPath = flags["tls-cert"];
  const keyPath = flags["tls-key"];
  if ((certPath === undefined) !== (keyPath === undefined))
    throw new UsageError("--tls-cert and --tls-key go together");
  if (!flags.tls && caPath === undefined && certPath === undefined) {
    if (flags["tls-server-name"] !== undefined)
      throw new UsageError("--tls-server-name needs TLS: add --tls or --tls-ca");
    return undefined;
  }
  return {
    ...(caPath ? { ca: readPem(flags["tls-ca"] === undefined ? "HOMEKV_TLS_CA" : "--tls-ca", caPath) } : {}),
    ...(certPath && keyPath ? { cert: readPem("--tls-cert", certPath), key: readPem("--tls-key", keyPath) } : {}),
    ...(flags["tls-server-name"] ? { serverName: flags["tls-server-name"] } : {}),
  };
}

/** Runs `body` with a connected client and closes it afterwards, whatever happens. */
export async function withClient<T>(flags: ConnectionFlags, body: (client: HomeKvClient) => Promise<T>): Promise<T> {
  const client = connect(flags);
  try {
    return await body(client);
  } finally {
    client.close();
  }
}
