import { formatAddress } from "../address.ts";
import { HomeKvClient } from "../client/client.ts";
import { DEFAULT_HOST, DEFAULT_PORT } from "../server/server.ts";
import { parseIntegerFlag } from "./usage-error.ts";

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
} as const;

export interface ConnectionFlags {
  host?: string;
  port?: string;
  timeout?: string;
}

/** `host:port` from the flags first, then HOMEKV_HOST / HOMEKV_PORT, then the defaults. */
export function resolveAddress(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): string {
  const host = flags.host || env.HOMEKV_HOST || DEFAULT_HOST;
  const portFlag = flags.port !== undefined ? "--port" : "HOMEKV_PORT";
  const port = parseIntegerFlag(portFlag, flags.port ?? env.HOMEKV_PORT, DEFAULT_PORT, 1, 65_535);
  return formatAddress(host, port);
}

export function connect(flags: ConnectionFlags): HomeKvClient {
  const timeoutMs = parseIntegerFlag("--timeout", flags.timeout, 5_000, 1, 3_600_000);
  return new HomeKvClient({ address: resolveAddress(flags), timeoutMs });
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
