import { assert } from "../../errors.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { NodeId } from "../raft/types.ts";
import type { PeerChannels } from "./peer-channels.ts";
import { type LinkedGroup, PeerLink, type PeerLinkStats } from "./peer-link.ts";
import type { RaftDriver, RaftOutbox } from "./raft-driver.ts";

export interface RaftHostOptions {
  channels: PeerChannels;
  /** Raft node id → transport node name, for every node of every group (a live map). */
  names: ReadonlyMap<NodeId, string>;
  /** A message from a node `names` does not know yet: whether to take it (PeerLinkOptions.learnName). */
  learnName?: (id: NodeId, name: string) => boolean;
  tickMs: number;
  log?: (line: string) => void;
  /** Default: the real ones (src/timers.ts). */
  timers?: Timers;
}

export interface RaftHostStats extends PeerLinkStats {
  groups: number;
  /** Groups not quiesced here: the ones a tick costs more than a few checks. */
  awake: number;
}

/**
 * Runs many Raft groups in one process (multi-raft): one timer ticks every group, and one link
 * carries all their messages over the peer transport's one connection per peer, a turn's messages
 * to a peer in one payload. A group is a RaftDriver made with `tickedByHost` and the outbox `add`
 * hands it. Its core should quiesce (RaftOptions.quiesce): a quiet group sends nothing and its tick
 * is a few checks, so idle groups cost next to nothing however many there are.
 */
export class RaftHost {
  private readonly drivers = new Map<number, RaftDriver<unknown>>();
  private readonly link: PeerLink;
  private stopTicker: (() => void) | undefined;
  private readonly timers: Timers;

  constructor(private readonly options: RaftHostOptions) {
    this.timers = options.timers ?? realTimers;
    this.link = new PeerLink({
      channels: options.channels,
      names: options.names,
      learnName: options.learnName,
      log: options.log,
      timers: this.timers,
    });
  }

  /**
   * Runs group `group`: `create` is given the group's outbox and returns its driver (made with
   * `tickedByHost`), which is started here. `linked.receive` is where the group's messages go
   * (normally the driver's `receive`); `linked.snapshots` its snapshot streams.
   */
  add<R>(
    group: number,
    create: (outbox: RaftOutbox) => RaftDriver<R>,
    linked?: Omit<LinkedGroup, "receive">,
  ): RaftDriver<R> {
    assert(!this.drivers.has(group), () => `group ${group} runs here already`);
    let driver: RaftDriver<R> | undefined;
    const outbox = this.link.join(group, { ...linked, receive: (message) => driver?.receive(message) });
    driver = create(outbox);
    this.drivers.set(group, driver as RaftDriver<unknown>);
    driver.start();
    return driver;
  }

  /** Stops group `group` here (its replica moved away): its driver stops, its messages are no longer taken. */
  remove(group: number): void {
    const driver = this.drivers.get(group);
    if (driver === undefined) return;
    this.drivers.delete(group);
    this.link.leave(group);
    driver.stop();
  }

  driver(group: number): RaftDriver<unknown> | undefined {
    return this.drivers.get(group);
  }

  get groups(): readonly number[] {
    return [...this.drivers.keys()];
  }

  start(): void {
    assert(this.stopTicker === undefined, "the host is already running");
    this.stopTicker = this.timers.every(this.options.tickMs, () => {
      for (const driver of this.drivers.values()) driver.tick();
    });
  }

  /** Stops ticking and stops every group's driver (their storage is the caller's to close). */
  stop(): void {
    this.stopTicker?.();
    for (const group of this.groups) this.remove(group);
  }

  stats(): RaftHostStats {
    let awake = 0;
    for (const driver of this.drivers.values()) if (!driver.quiesced) awake++;
    return { ...this.link.stats(), groups: this.drivers.size, awake };
  }
}
