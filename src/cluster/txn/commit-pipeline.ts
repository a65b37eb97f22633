import { HomeKvError } from "../../errors.ts";

export interface CommitPipelineOptions<T, R> {
  /** The first of `count` consecutive timestamps (the meta leader's, through a TimestampClient). */
  timestamps(count: number): Promise<number>;
  /**
   * Proposes `item` at timestamp `ts`, synchronously appended after every earlier call (the
   * partition leader's Raft log); resolves once it is applied.
   */
  propose(ts: number, item: T): Promise<R>;
  /** The term in which this node leads the partition; undefined while it does not. */
  leaderTerm(): number | undefined;
}

interface Waiting<T, R> {
  item: T;
  resolve: (outcome: { ts: number; result: R }) => void;
  reject: (error: unknown) => void;
}

/**
 * How a partition's leader gives its one-round writes timestamps: the writes waiting get theirs from
 * one request to the oracle at a time, in the order they came, and are proposed in that order, so
 * the timestamps in the partition's log increase. A read at timestamp R (taken from the oracle
 * before it reached the partition) first waits for `barrier()`: every write whose timestamp was
 * asked for before then may have one below R, and must be applied (or have failed) before the read
 * looks — a write asked for later gets one above R.
 */
export class CommitPipeline<T, R> {
  private waiting: Waiting<T, R>[] = [];
  private asking = false;
  /** Settles once every batch asked for so far has been applied or has failed. */
  private settled: Promise<void> = Promise.resolve();

  constructor(private readonly options: CommitPipelineOptions<T, R>) {}

  /** Gives `item` the next timestamp of this partition's and proposes it; resolves once it is applied. */
  submit(item: T): Promise<{ ts: number; result: R }> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.askNext();
    });
  }

  /** Resolves once every write whose timestamp was asked for before this call is applied or has failed. */
  barrier(): Promise<void> {
    return this.settled;
  }

  private askNext(): void {
    if (this.asking || this.waiting.length === 0) return;
    this.asking = true;
    const batch = this.waiting;
    this.waiting = [];
    // A batch is proposed only in the term its timestamps were asked for in: had leadership gone
    // and come back meanwhile, another leader may have served a read above them that this
    // leader's barrier never knew of (TiKV syncs max_ts after a change of leader for this).
    const term = this.options.leaderTerm();
    const done = (
      term === undefined
        ? Promise.reject(notLeading())
        : this.options.timestamps(batch.length).then((first) => {
            if (this.options.leaderTerm() !== term) throw notLeading();
            return first;
          })
    ).then(
      (first) => {
        // All proposed now, in timestamp order, before anything else can be.
        const applied = batch.map((waiter, i) =>
          this.options.propose(first + i, waiter.item).then(
            (result) => waiter.resolve({ ts: first + i, result }),
            (error) => waiter.reject(error),
          ),
        );
        this.asking = false;
        this.askNext();
        return Promise.all(applied);
      },
      (error) => {
        for (const waiter of batch) waiter.reject(error);
        this.asking = false;
        this.askNext();
      },
    );
    const before = this.settled;
    this.settled = Promise.all([before, done]).then(() => {});
  }
}

function notLeading(): HomeKvError {
  return new HomeKvError(
    "E_NOT_LEADER",
    "this node's leadership of the partition changed while the write waited for its timestamp: nothing was applied",
  );
}
