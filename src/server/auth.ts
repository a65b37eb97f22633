import { createHash, timingSafeEqual } from "node:crypto";
import { ServerInterceptingCall, type ServerInterceptor, status as Status } from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";

/**
 * Bearer-token auth with three roles, each allowing what the one before it does and more:
 * read (Get, Scan, Watch, Metrics, Members, Ring), write (also Set, Del, Txn, Compact), admin (also Checkpoint).
 */
export const ROLES = ["read", "write", "admin"] as const;
export type Role = (typeof ROLES)[number];

const SERVICE = "/homekv_service.HomeKvService/";

/** The role each HomeKV method needs; a method missing here needs admin, so a new RPC is closed until placed. */
const REQUIRED_ROLE: Readonly<Record<string, Role>> = {
  Get: "read",
  Scan: "read",
  Watch: "read",
  Metrics: "read",
  Members: "read",
  Ring: "read",
  // Who the members are and who leads: what Members and Ring tell, no data.
  ClusterStatus: "read",
  Set: "write",
  Del: "write",
  Txn: "write",
  Compact: "write",
  Checkpoint: "admin",
  // It writes where the server's process may write, on its machine.
  Backup: "admin",
  // Membership changes, as etcd's need its root role.
  ClusterAdd: "admin",
  ClusterRemove: "admin",
  ClusterTransferLeader: "admin",
};

/** Open to anyone, like etcd's: probes and tools must work without a credential, and they reveal no data. */
const OPEN_SERVICES = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/** Tokens as the server keeps them: SHA-256 digests only, so that no token sits in memory or in a log. */
export interface AuthTokens {
  readonly entries: readonly { readonly digest: Buffer; readonly role: Role }[];
}

const HASHED = /^sha256:([0-9a-f]{64})$/;

/**
 * An auth file: one `TOKEN ROLE` per line; `#` starts a comment. A token written `sha256:<64 hex
 * digits>` is already a digest (`printf %s TOKEN | sha256sum`), so the file need not hold it in clear.
 */
export function parseAuthFile(text: string, source: string): AuthTokens {
  const entries: { digest: Buffer; role: Role }[] = [];
  const seen = new Set<string>();
  text.split("\n").forEach((raw, index) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const where = `${source}:${index + 1}`;
    const fields = line.split(/\s+/);
    const [token, role] = fields;
    if (fields.length !== 2 || token === undefined || role === undefined) {
      throw new HomeKvError("E_CONFIG", `${where}: expected "TOKEN ROLE", found ${fields.length} field(s)`);
    }
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new HomeKvError(
        "E_CONFIG",
        `${where}: role must be one of ${ROLES.join(", ")}, not ${JSON.stringify(role)}`,
      );
    }
    const hashed = HASHED.exec(token);
    const digest = hashed ? Buffer.from(hashed[1]!, "hex") : sha256(token);
    const key = digest.toString("hex");
    if (seen.has(key)) throw new HomeKvError("E_CONFIG", `${where}: this token is already listed above`);
    seen.add(key);
    entries.push({ digest, role: role as Role });
  });
  if (entries.length === 0) throw new HomeKvError("E_CONFIG", `${source} lists no token: every call would be refused`);
  return { entries };
}

/** Inline tokens, `TOKEN:ROLE` separated by commas (the --auth-tokens setting). */
export function parseInlineTokens(text: string, source: string): AuthTokens {
  return parseAuthFile(
    text
      .split(",")
      .map((pair) => pair.trim().replace(/:(?=[^:]*$)/, " "))
      .join("\n"),
    source,
  );
}

export function mergeTokens(...sets: AuthTokens[]): AuthTokens {
  return { entries: sets.flatMap((set) => set.entries) };
}

/**
 * The role of a presented token, or undefined. Every entry is compared, each in constant time, so
 * that the time taken says nothing about which digest, or how much of one, matched.
 */
export function roleOf(tokens: AuthTokens, token: string): Role | undefined {
  const digest = sha256(token);
  let role: Role | undefined;
  for (const entry of tokens.entries) {
    if (timingSafeEqual(entry.digest, digest)) role = entry.role;
  }
  return role;
}

/** The role a method needs, or undefined for the open services. */
export function requiredRole(path: string): Role | undefined {
  if (OPEN_SERVICES.some((prefix) => path.startsWith(prefix))) return undefined;
  return (path.startsWith(SERVICE) && REQUIRED_ROLE[path.slice(SERVICE.length)]) || "admin";
}

export function allows(role: Role, needed: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

/** Why a call is refused, or undefined when it may go on. */
export function checkCall(
  tokens: AuthTokens,
  path: string,
  authorization: string | undefined,
): { code: Status; details: string } | undefined {
  const needed = requiredRole(path);
  if (needed === undefined) return undefined;
  const method = path.slice(path.lastIndexOf("/") + 1);
  if (authorization === undefined) {
    return {
      code: Status.UNAUTHENTICATED,
      details: `${method} needs a token: send "authorization: Bearer TOKEN" (CLI: --token or HOMEKV_TOKEN)`,
    };
  }
  const bearer = /^Bearer (.+)$/i.exec(authorization.trim());
  if (!bearer) return { code: Status.UNAUTHENTICATED, details: 'the authorization header must be "Bearer TOKEN"' };
  const role = roleOf(tokens, bearer[1]!);
  if (role === undefined) return { code: Status.UNAUTHENTICATED, details: "the token is not valid on this server" };
  if (!allows(role, needed))
    return { code: Status.PERMISSION_DENIED, details: `${method} needs the ${needed} role; this token has ${role}` };
  return undefined;
}

/**
 * Refuses a call before its handler starts unless its token's role allows the method. Placed last
 * among the interceptors (outermost), so that the refusals pass through the RPC stats.
 */
export function authInterceptor(tokens: AuthTokens): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, forward) => {
            const header = metadata.get("authorization")[0];
            const refusal = checkCall(tokens, method.path, typeof header === "string" ? header : undefined);
            if (refusal) call.sendStatus(refusal);
            else forward(metadata);
          },
        }),
    });
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
