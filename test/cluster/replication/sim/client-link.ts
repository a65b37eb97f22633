import type { Owner, VirtualTime } from "./virtual-time.ts";

/** A request's outcome as its client saw it. */
export type Outcome<T> =
  | { kind: "ok"; value: T }
  /** It certainly did not take effect (refused before it was applied, no process to take it). */
  | { kind: "refused"; why: string }
  /** No answer, or one that does not say (a deadline, a lost answer, a leader gone meanwhile). */
  | { kind: "unknown"; why: string };

export interface ClientLink {
  /** A client waits this long for an answer (its gRPC deadline), then the outcome is unknown to it. */
  deadlineMs: number;
  /** The chance of an answer lost on its way back (its connection dropped), as it comes back (faults end at a heal). */
  answerLostRate: () => number;
}

/**
 * One request from a client to a process over a simulated client connection: it reaches the
 * process after up to 2 ms, as an event of the process's own (a paused process takes it when it
 * resumes, a dead one never), `run` serves it there, and the answer comes back after up to 2 ms,
 * unless it is lost or the process died meanwhile; past `deadlineMs` the client stops waiting. No process: refused at once
 * (connection refused). Errors become outcomes through `classify`.
 */
export function overClientLink<T>(
  world: { time: VirtualTime; random: () => number },
  link: ClientLink,
  process: Owner | undefined,
  run: () => Promise<T>,
  classify: (error: unknown) => Outcome<T>,
): Promise<Outcome<T>> {
  const { time, random } = world;
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: Outcome<T>) => {
      if (done) return;
      done = true;
      cancelDeadline();
      resolve(outcome);
    };
    const cancelDeadline = time.schedule(link.deadlineMs, () => finish({ kind: "unknown", why: "deadline" }));
    const reply = (outcome: Outcome<T>) => {
      if (random() < link.answerLostRate()) return; // the deadline ends the wait
      time.schedule(random() * 2, () => finish(outcome));
    };
    if (process === undefined) return reply({ kind: "refused", why: "connection refused" });
    time.schedule(
      random() * 2,
      () => {
        // What a process that died meanwhile was doing may still settle; it answers nothing.
        const answer = (outcome: () => Outcome<T>) => {
          if (process.alive) reply(outcome());
        };
        run().then(
          (value) => answer(() => ({ kind: "ok", value })),
          (error: unknown) => answer(() => classify(error)),
        );
      },
      process,
    );
  });
}
