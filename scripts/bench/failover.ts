/**
 * Failover as a client sees it: kill -9 the leader, then time until a write sent through one of the
 * survivors is acknowledged. The client does not wait for one attempt to fail before the next (a
 * write forwarded to the dead leader may hang until its deadline): it starts a write every
 * `retryEveryMs`, alternating between the survivors, each with its own deadline, and stops at the
 * first OK. Connections to the survivors are open (and have taken a write) before the kill, so no
 * connection set-up is timed.
 */
import { connectH2Pool } from "../../src/bench/h2-unary.ts";
import type { BenchCluster } from "./cluster.ts";
import { waitFor } from "./servers.ts";

const RETRY_EVERY_MS = 5;
/** An attempt not answered by then is cancelled, so that attempts in flight stay bounded. */
const ATTEMPT_TIMEOUT_MS = 1_000;
const ATTEMPTS_IN_FLIGHT_MAX = 400;
const FAILOVER_DEADLINE_MS = 30_000;
const VALUE = new TextEncoder().encode("failover");

/** Milliseconds from SIGKILL of the leader to the first acknowledged write; the killed member is restarted after. */
export async function timeFailover(cluster: BenchCluster, run: number): Promise<number> {
  const leader = await cluster.leader();
  const survivors = cluster.members.filter((member) => member !== leader);
  const pools = survivors.map((member) => connectH2Pool(member.address, 1, { timeoutMs: ATTEMPT_TIMEOUT_MS }));
  let written = 0;
  const write = (survivor: number) => {
    const { path, message } = cluster.protocol.set([`failover/${run}/${written++}`], VALUE);
    return pools[survivor]!.call(path, message);
  };
  try {
    for (const [i, member] of survivors.entries())
      await waitFor(`${cluster.system} ${member.name} to take a write before the kill`, async () => {
        return (await write(i)).status === 0;
      });
    const killedAt = performance.now();
    const killed = leader.kill();
    const ackMs = await firstAcknowledged(
      killedAt,
      survivors.map((member) => member.name),
      write,
    );
    await killed;
    return ackMs;
  } finally {
    for (const pool of pools) pool.close();
    if (!leader.running()) leader.restart();
    await cluster.healthy();
  }
}

/** Starts a write every RETRY_EVERY_MS through survivor 0, 1, 0, …; resolves with the time of the first OK. */
function firstAcknowledged(
  killedAt: number,
  survivors: readonly string[],
  write: (survivor: number) => Promise<{ status: number; message: string }>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const errors = new Map<string, number>();
    let attempts = 0;
    let inFlight = 0;
    let settled = false;
    const finish = (outcome: () => void) => {
      settled = true;
      clearInterval(timer);
      outcome();
    };
    // Bounded: at most FAILOVER_DEADLINE_MS / RETRY_EVERY_MS ticks, and ATTEMPTS_IN_FLIGHT_MAX open attempts.
    const timer = setInterval(() => {
      if (performance.now() - killedAt > FAILOVER_DEADLINE_MS) {
        const seen = [...errors].map(([error, count]) => `${error} ×${count}`).join("; ");
        const names = survivors.join(", ");
        finish(() =>
          reject(new Error(`no write through ${names} acknowledged within ${FAILOVER_DEADLINE_MS} ms; ${seen}`)),
        );
        return;
      }
      if (inFlight >= ATTEMPTS_IN_FLIGHT_MAX) return;
      inFlight++;
      write(attempts++ % survivors.length).then((answer) => {
        inFlight--;
        if (settled) return;
        if (answer.status === 0) finish(() => resolve(performance.now() - killedAt));
        else errors.set(answer.message, (errors.get(answer.message) ?? 0) + 1);
      });
    }, RETRY_EVERY_MS);
  });
}
