import type { Operation } from "./history.ts";
import type { SequentialModel } from "./model.ts";

/**
 * One operation of a planned run: it takes effect at `point` (if at all), inside [call, ret].
 * "unknown" ones are recorded with `ret = Infinity`; of those, `lost` ones never took effect.
 */
export interface PlannedOperation<I> {
  client: number;
  input: I;
  call: number;
  point: number;
  ret: number;
  outcome: "known" | "unknown" | "lost";
}

/**
 * The history clients would record of a run that applies the operations one at a time in order
 * of their points: linearizable by construction, the points being a witness.
 */
export function recordRun<S, I, O>(model: SequentialModel<S, I, O>, plan: PlannedOperation<I>[]): Operation<I, O>[] {
  let state = model.init();
  const outputs = new Map<PlannedOperation<I>, O | undefined>();
  for (const planned of [...plan].sort((a, b) => a.point - b.point)) {
    if (planned.outcome === "lost") continue;
    const next = model.apply(state, planned.input);
    state = next.state;
    outputs.set(planned, next.output);
  }
  return plan.map((p) => {
    const known = p.outcome === "known";
    return {
      client: p.client,
      input: p.input,
      output: known ? outputs.get(p) : undefined,
      call: p.call,
      ret: known ? p.ret : Number.POSITIVE_INFINITY,
    };
  });
}

export interface ClientRun<I> {
  clients: number;
  operations: number;
  /** The next input a client issues. */
  input: (random: () => number) => I;
  /** How long an operation takes, at most (time units); each takes 1 to this. */
  durationMax: number;
  /** The chance that an operation's outcome is unknown to its client. */
  unknownRate: number;
  random: () => number;
}

/**
 * A run as real clients make it: each client issues its next operation as soon as the previous
 * one returned (or, after an unknown outcome, gave up at once), every operation taking effect at a
 * random instant while it is outstanding; the clients run concurrently.
 */
export function planClients<I>(run: ClientRun<I>): PlannedOperation<I>[] {
  const clock = new Array<number>(run.clients).fill(0);
  const plan: PlannedOperation<I>[] = [];
  for (let i = 0; i < run.operations; i++) {
    const client = Math.floor(run.random() * run.clients);
    const call = clock[client]!;
    const ret = call + 1 + Math.floor(run.random() * run.durationMax);
    const point = call + run.random() * (ret - call);
    const outcome = run.random() >= run.unknownRate ? "known" : run.random() < 0.5 ? "unknown" : "lost";
    plan.push({ client, input: run.input(run.random), call, point, ret, outcome });
    clock[client] = ret;
  }
  return plan;
}
