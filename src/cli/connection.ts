import { DEFAULT_HOST, DEFAULT_PORT, formatAddress } from "../address.ts";
import { type ClientTls, HomeKvClient } from "../client/client.ts";
import { readPem } from "../pem.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

/** The flags every client command shares. */
export const connectionArgs = {
  endpoints: {
    type: "string",
    description:
      "Members of one cluster, HOST:PORT,HOST:PORT,...: calls fail over between them (env HOMEKV_ENDPOINTS; instead of --host/--port)",
  },
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
  endpoints?: string;
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

/**
 * The servers to call: --endpoints, else --host/--port, else HOMEKV_ENDPOINTS, else HOMEKV_HOST /
 * HOMEKV_PORT, else the defaults. A flag beats every environment variable, as for every setting: a
 * `-p` typed to reach one server is not overridden by endpoints exported in the shell.
 */
export function resolveEndpoints(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): string[] {
  const hostOrPort = flags.host !== undefined || flags.port !== undefined;
  if (flags.endpoints !== undefined) {
    if (hostOrPort) throw new UsageError("give --endpoints or --host/--port, not both");
    return parseEndpoints("--endpoints", flags.endpoints);
  }
  if (!hostOrPort && env.HOMEKV_ENDPOINTS) return parseEndpoints("HOMEKV_ENDPOINTS", env.HOMEKV_ENDPOINTS);
  const host = flags.host || env.HOMEKV_HOST || DEFAULT_HOST;
  const portFlag = flags.port !== undefined ? "--port" : "HOMEKV_PORT";
  const port = parseIntegerFlag(portFlag, flags.port ?? env.HOMEKV_PORT, DEFAULT_PORT, 1, 65_535);
  return [formatAddress(host, port)];
}

/** `HOST:PORT,HOST:PORT,...` (IPv6 hosts in brackets), each listed once. */
export function parseEndpoints(label: string, text: string): string[] {
  const endpoints = text.split(",").map((entry) => entry.trim());
  for (const [i, endpoint] of endpoints.entries()) {
    const port = Number(/^(?:\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(endpoint)?.[1]);
    if (!(port >= 1 && port <= 65_535))
      throw new UsageError(
        `${label} must list HOST:PORT entries (port 1 to 65535) separated by commas, not ${JSON.stringify(endpoint)}`,
      );
    if (endpoints.indexOf(endpoint) !== i) throw new UsageError(`${label} lists ${endpoint} twice`);
  }
  return endpoints;
}

export function connect(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): HomeKvClient {
  const timeoutMs = parseIntegerFlag("--timeout", flags.timeout, 5_000, 1, 3_600_000);
  const token = resolveToken(flags, env);
  const tls = resolveTls(flags, env);
  return new HomeKvClient({
    endpoints: resolveEndpoints(flags, env),
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

/** `--request-id`: names a write so that a retry of it applies at most once. */
export const requestIdArg = {
  "request-id": {
    type: "string",
    description: "Name this write: sent again with the same id (after a failover, say), it applies at most once",
  },
} as const;

/** The write options of `--request-id`. */
export function requestIdOption(raw: string | undefined): { requestId?: string } {
  if (raw === undefined) return {};
  if (raw === "") throw new UsageError("--request-id needs a value");
  return { requestId: raw };
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
