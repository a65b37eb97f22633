import { assert, HomeKvError } from "../../errors.ts";
import { ByteWriter, readVersioned } from "../../io/format/bytes.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { NodeId } from "../raft/types.ts";
import type { PeerRpc } from "../replication/peer-rpc.ts";
import type { MetaGroup } from "./meta-group.ts";
import { atMetaLeader } from "./meta-leader.ts";

/**
 * Timestamps over peer RPC: any node asks the meta group's leader. Frozen format, version 1:
 *
 *   meta.timestamps   request: u8 version · varint count     answer: u8 version · varint first
 */
export const TIMESTAMPS_METHOD = "meta.timestamps";
const VERSION = 1;
const BODY = "a timestamps body";
/** Timestamps one request may ask for: a node's batch of a turn, with room. */
export const TIMESTAMPS_PER_REQUEST_MAX = 1_000_000;

/** Answers other nodes' requests for timestamps from this node's replica of the meta group (its leader's). */
export function serveTimestamps(rpc: PeerRpc, meta: MetaGroup): void {
  rpc.handle(TIMESTAMPS_METHOD, async (_from, request) => {
    const count = decodeCount(request);
    return new ByteWriter(16)
      .u8(VERSION)
      .varint(await meta.timestamps(count))
      .written()
      .slice();
  });
}

function decodeCount(bytes: Uint8Array): number {
  const count = readVersioned(bytes, VERSION, BODY, (r) => r.varint());
  if (count < 1 || count > TIMESTAMPS_PER_REQUEST_MAX)
    throw new HomeKvError("E_INVALID", `a request for ${count} timestamps (1 to ${TIMESTAMPS_PER_REQUEST_MAX})`);
  return count;
}

export interface TimestampClientOptions {
  meta: MetaGroup;
  rpc: PeerRpc;
  /** A node's transport name. */
  nameOf: (id: NodeId) => string | undefined;
  /** How long a request may wait for a leader and its answer. */
  timeoutMs: number;
  timers?: Timers;
}

interface Waiting {
  count: number;
  resolve: (first: number) => void;
  reject: (error: unknown) => void;
}

/**
 * A node's timestamps, from the meta group's leader wherever it is: the requests of one event-loop
 * turn go as one (one call, one confirming round there) and each gets its own consecutive run of
 * the batch. Asked of the local replica when this node leads; otherwise of the leader it knows,
 * again after a tick while the group has none, or the one asked no longer leads or does not answer
 * within a second, until `timeoutMs`.
 */
export class TimestampClient {
  private waiting: Waiting[] = [];
  private readonly timers: Timers;

  constructor(private readonly options: TimestampClientOptions) {
    this.timers = options.timers ?? realTimers;
  }

  /** The first of `count` consecutive timestamps, above every one handed out before this call. */
  take(count: number): Promise<number> {
    assert(Number.isInteger(count) && count >= 1, () => `${count} timestamps`);
    if (count > TIMESTAMPS_PER_REQUEST_MAX)
      return Promise.reject(
        new HomeKvError("E_INVALID", `a request for ${count} timestamps (1 to ${TIMESTAMPS_PER_REQUEST_MAX})`),
      );
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) this.timers.soon(() => this.flush());
      this.waiting.push({ count, resolve, reject });
    });
  }

  /** Asks for the turn's requests, as few calls as the per-call bound allows, each for consecutive runs. */
  private flush(): void {
    const all = this.waiting;
    this.waiting = [];
    let batch: Waiting[] = [];
    let total = 0;
    for (const waiter of all) {
      if (total + waiter.count > TIMESTAMPS_PER_REQUEST_MAX) {
        this.askFor(batch, total);
        batch = [];
        total = 0;
      }
      batch.push(waiter);
      total += waiter.count;
    }
    this.askFor(batch, total);
  }

  private askFor(batch: readonly Waiting[], total: number): void {
    this.ask(total, this.timers.now() + this.options.timeoutMs).then(
      (first) => {
        let next = first;
        for (const waiter of batch) {
          waiter.resolve(next);
          next += waiter.count;
        }
      },
      (error) => {
        for (const waiter of batch) waiter.reject(error);
      },
    );
  }

  private async ask(count: number, deadline: number): Promise<number> {
    const { meta, rpc, nameOf } = this.options;
    try {
      return await atMetaLeader(
        meta,
        nameOf,
        this.timers,
        deadline,
        () => meta.timestamps(count),
        async (leader, attemptMs) => {
          const request = new ByteWriter(16).u8(VERSION).varint(count).written().slice();
          const answer = await rpc.call(leader, TIMESTAMPS_METHOD, request, attemptMs);
          return readVersioned(answer, VERSION, BODY, (r) => r.varint());
        },
      );
    } catch (error) {
      if (error instanceof HomeKvError && error.code === "E_UNAVAILABLE")
        throw new HomeKvError(
          "E_UNAVAILABLE",
          `no timestamps within ${this.options.timeoutMs} ms: no meta leader answered`,
        );
      throw error;
    }
  }
}
