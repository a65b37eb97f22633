import type { Cluster, Member } from "./cluster.ts";

/**
 * The faults a nemesis applies, one at a time:
 * - kill: kill -9 of one member (the leader half the time), restarted on its data directory at heal;
 * - pause: SIGSTOP of one member (the leader half the time), SIGCONT at heal;
 * - partition: the members split into a minority and a majority, every link between them cut;
 * - isolate-leader: the leader (as it says itself) cut off from every other member;
 * - kill-all: kill -9 of every member at once, all restarted at heal.
 */
export const FAULT_KINDS = ["kill", "pause", "partition", "isolate-leader", "kill-all", "membership"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ScheduleOptions {
  kinds: readonly FaultKind[];
  random: () => number;
  /** performance.now() after which no new fault starts (the one in effect is healed). */
  untilMs: number;
  /** How long a fault lasts, and the calm between two, each drawn in [min, max). */
  faultMs: readonly [number, number];
  calmMs: readonly [number, number];
}

/** What was done when, in ms from the schedule's start: the run's report prints it. */
export type ScheduleLog = string[];

/**
 * Applies faults of `kinds` in turn until `untilMs`: calm, fault, heal, calm... The kinds are dealt
 * from a shuffled deck, so that a run long enough for as many faults as kinds has each of them (a
 * short run in `npm test` must not miss the one fault that shows a bug). Each fault's
 * duration is the thing under test (how the cluster bears it), so the schedule paces itself with
 * timers; nothing waits on a timer for a condition. Every fault is healed before it returns.
 */
export async function runSchedule(cluster: Cluster, options: ScheduleOptions): Promise<ScheduleLog> {
  const { random } = options;
  const started = performance.now();
  const log: ScheduleLog = [];
  const note = (line: string) => log.push(`${((performance.now() - started) / 1000).toFixed(1)}s ${line}`);
  const between = ([min, max]: readonly [number, number]) => min + random() * (max - min);
  let deck: FaultKind[] = [];
  // Bounded by the deadline; the count is a backstop.
  for (let i = 0; i < 10_000; i++) {
    await Bun.sleep(Math.max(0, Math.min(between(options.calmMs), options.untilMs - performance.now())));
    if (performance.now() >= options.untilMs) break;
    if (deck.length === 0) deck = shuffle(options.kinds, random);
    const kind = deck.pop()!;
    const heal = await inject(cluster, kind, random, note);
    await Bun.sleep(between(options.faultMs));
    await heal();
  }
  return log;
}

/** Applies one fault; resolves with what undoes it. */
async function inject(
  cluster: Cluster,
  kind: FaultKind,
  random: () => number,
  note: (line: string) => void,
): Promise<() => Promise<void>> {
  const { members } = cluster;
  const pick = (from: readonly Member[]) => from[Math.floor(random() * from.length)]!;
  // Both drawn whatever leads, so that a seed replays the same draws; who leads is the run's.
  const leaderFirst = random() < 0.5;
  const drawn = pick(members);
  const target = async () => (leaderFirst ? ((await cluster.leader()) ?? drawn) : drawn);
  switch (kind) {
    case "kill": {
      const member = await target();
      note(`kill -9 ${member.name}`);
      await cluster.kill(member);
      return async () => {
        note(`restart ${member.name}`);
        await cluster.launch(member);
      };
    }
    case "pause": {
      const member = await target();
      note(`SIGSTOP ${member.name}`);
      cluster.pause(member);
      return async () => {
        note(`SIGCONT ${member.name}`);
        cluster.resume(member);
      };
    }
    case "partition": {
      const shuffled = shuffle(members, random);
      const minority = 1 + Math.floor(random() * Math.floor((members.length - 1) / 2));
      const sides = [shuffled.slice(0, minority), shuffled.slice(minority)];
      return cutOff(cluster, sides, "partition", note);
    }
    case "isolate-leader": {
      const leader = (await cluster.leader()) ?? drawn;
      return cutOff(cluster, [[leader], members.filter((m) => m !== leader)], "isolate the leader", note);
    }
    case "membership": {
      // A member added (a learner: it catches up, by snapshot if the log was compacted) and removed
      // again under load: two configuration changes through the log between the writes.
      const through = await target();
      const { spare } = cluster;
      note(`start ${spare.name} and add it through ${through.name}`);
      await cluster.launchSpare();
      const added = await through.client
        ?.clusterAdd(spare.name, `127.0.0.1:${spare.peerPort}`)
        .then(() => "added")
        .catch((error: Error) => `not added: ${error.message}`);
      note(`${spare.name} ${added ?? "not added: the member is down"}`);
      return async () => {
        // Through whichever member answers: the one asked first may be down by now.
        let removed = "not removed";
        for (const member of members) {
          const outcome = await member.client
            ?.clusterRemove(spare.name)
            .then(() => "removed")
            .catch((error: Error) => `not removed: ${error.message}`);
          removed = outcome ?? removed;
          if (outcome === "removed" || outcome?.includes("no member is named")) break;
        }
        note(`${spare.name} ${removed}; stopped`);
        await cluster.kill(spare);
      };
    }
    case "kill-all": {
      note("kill -9 every member");
      await Promise.all(members.map((member) => cluster.kill(member)));
      return async () => {
        note("restart every member");
        await Promise.all(members.map((member) => cluster.launch(member)));
      };
    }
  }
}

function cutOff(cluster: Cluster, sides: readonly Member[][], what: string, note: (line: string) => void) {
  const names = sides.map((side) => side.map((m) => m.name).join(",")).join(" | ");
  note(`${what} ${names}`);
  cluster.partition(sides);
  return async () => {
    note(`heal ${names}`);
    cluster.healLinks();
  };
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
