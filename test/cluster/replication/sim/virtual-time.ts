import type { Timers } from "../../../../src/timers.ts";

/** Whose events these are: a member's process, whose events vanish when it dies and wait while it is paused. */
export interface Owner {
  alive: boolean;
  /** Virtual ms until which the owner is frozen (SIGSTOP): its events are held until then. */
  pausedUntil: number;
}

interface Scheduled {
  at: number;
  /** Ties at one instant fire in the order they were scheduled. */
  seq: number;
  fire: () => void;
  owner: Owner | undefined;
  cancelled: boolean;
}

/** The simulation's own events (clients, the network's fate, faults) belong to no member. */
const WORLD: Owner = { alive: true, pausedUntil: 0 };

/**
 * Virtual time: a queue of timed events fired one at a time in (time, order scheduled) order, with
 * the microtasks each one starts run to the end before the next (`drain`). Nothing waits for real
 * time, so a run is as fast as its events and, given the same events, always the same.
 */
export class VirtualTime {
  now = 0;
  /** Events fired so far (the simulation's size, and a bound on a run). */
  fired = 0;
  /** Runs after each event, once what it started has run (an invariant checked all along). */
  afterEvent: (() => void) | undefined;
  private heap: Scheduled[] = [];
  private seq = 0;

  /** Runs `fire` at `now + delayMs` unless cancelled (or its owner died); returns the cancel. */
  schedule(delayMs: number, fire: () => void, owner: Owner = WORLD): () => void {
    const event: Scheduled = { at: this.now + Math.max(0, delayMs), seq: this.seq++, fire, owner, cancelled: false };
    this.push(event);
    return () => {
      event.cancelled = true;
    };
  }

  /** The clock and timers one process sees: its events are its owner's. */
  timersOf(owner: Owner): Timers {
    return {
      now: () => this.now,
      after: (delayMs, fire) => this.schedule(delayMs, fire, owner),
      // An event of its own at this instant: after what the current one started has run.
      soon: (fire) => {
        this.schedule(0, fire, owner);
      },
      every: (intervalMs, fire) => {
        let cancel = () => {};
        const arm = () => {
          cancel = this.schedule(
            intervalMs,
            () => {
              arm();
              fire();
            },
            owner,
          );
        };
        arm();
        return () => cancel();
      },
    };
  }

  /**
   * Fires the next event due at or before `untilMs` and lets what it started run to completion;
   * false when none is due. A paused owner's event is put back for when it resumes.
   */
  async step(untilMs: number): Promise<boolean> {
    for (;;) {
      const next = this.heap[0];
      if (next === undefined || next.at > untilMs) return false;
      this.pop();
      if (next.cancelled || next.owner?.alive === false) continue;
      this.now = next.at;
      if (next.owner !== undefined && next.owner.pausedUntil > this.now) {
        next.at = next.owner.pausedUntil;
        next.seq = this.seq++;
        this.push(next);
        continue;
      }
      this.fired++;
      next.fire();
      await drain();
      this.afterEvent?.();
      return true;
    }
  }

  /** Runs events until `done()` holds (at most `eventsMax` of them, none due after `untilMs`); whether it holds. */
  async runUntilDone(done: () => boolean, untilMs: number, eventsMax: number): Promise<boolean> {
    for (let i = 0; i < eventsMax && !done(); i++) if (!(await this.step(untilMs))) break;
    return done();
  }

  /** Runs every event until `untilMs` (at most `eventsMax` of them), then sets the clock there. */
  async runUntil(untilMs: number, eventsMax: number): Promise<void> {
    for (let i = 0; i < eventsMax; i++) if (!(await this.step(untilMs))) break;
    this.now = Math.max(this.now, untilMs);
  }

  private push(event: Scheduled): void {
    const heap = this.heap;
    heap.push(event);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop()!;
    if (heap.length === 0) return;
    heap[0] = last;
    for (let i = 0; ; ) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let least = i;
      if (l < heap.length && before(heap[l]!, heap[least]!)) least = l;
      if (r < heap.length && before(heap[r]!, heap[least]!)) least = r;
      if (least === i) break;
      [heap[i], heap[least]] = [heap[least]!, heap[i]!];
      i = least;
    }
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/**
 * Lets every microtask started so far run to the end: a macrotask runs only once the microtask
 * queue is empty. The code under test starts no macrotask of its own but the store's GC slices
 * (setImmediate), which keep their order with this one, so a run stays deterministic.
 */
function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
