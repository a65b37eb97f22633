import { runHomekv, type ServerProcess } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** `homekv cluster status --json`, as the cluster tests read it. */
export interface StatusMember {
  node_id: string;
  role: string;
  voter: boolean;
  peer_address: string;
  grpc_address: string;
  term: number;
  commit_index: number;
  applied_index: number;
  lag: number;
  is_self: boolean;
}

export interface Status {
  leader: string;
  members: StatusMember[];
}

/** A `homekv serve` process of a replicated cluster, and its member name. */
export interface NamedServer {
  name: string;
  server: ServerProcess;
}

export const homekvThrough = (member: NamedServer, ...args: string[]) =>
  runHomekv([...args, "-p", String(member.server.port)]);

export async function status(member: NamedServer): Promise<Status> {
  const result = await homekvThrough(member, "cluster", "status", "--json");
  if (result.exitCode !== 0) throw new Error(`cluster status through ${member.name}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

export const role = (s: Status, name: string) => s.members.find((m) => m.node_id === name)?.role;

/** Waits until `member`'s status satisfies `check`; returns that status. */
export function statusWhere(
  member: NamedServer,
  what: string,
  check: (s: Status) => boolean,
  timeoutMs = 20_000,
): Promise<Status> {
  let last: Status | undefined;
  return waitFor(
    async () => {
      last = await status(member);
      return check(last) ? last : undefined;
    },
    { what, timeoutMs, intervalMs: 100, detail: () => JSON.stringify(last) },
  );
}
