import { assert, HomeKvError } from "../../errors.ts";
import { mustReopen } from "./durable-log.ts";
import { entriesRecord, hardStateRecord, removalRecord, snapshotRecord } from "./group-log-format.ts";
import { SerialLog } from "./serial-log.ts";
import type { MemoryStorage, PersistentRaftLog } from "./storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/** One write of one group into the engine's shared log. */
export interface GroupWrite {
  group: number;
  /** Its records, framed. */
  bytes: Uint8Array;
  sync: boolean;
  /** The index of its last entry, for the engine to know which segment holds it (none: no entries). */
  lastEntry?: number;
  /** It voids every record of the group before it (a leader's snapshot, a removal). */
  voidsEarlier?: boolean;
  /** It is the group's removal: the engine holds the group no more. */
  removesGroup?: boolean;
  /** With a removal, the tombstone it leaves: the term the group's next log begins at. */
  tombstone?: number;
  /**
   * Runs once the write is durable (or, not synced, written) and before it resolves, so that the
   * group's memory never shows what the disk does not hold.
   */
  written: () => void;
}

/** What a group's log asks of the engine (group-log-engine.ts). */
export interface GroupLogWriter {
  /** Appends with the writes of every other group of the turn; one sync covers them all. */
  write(write: GroupWrite): Promise<void>;
  /** Writes a snapshot's data in a file of its own when too large for the log; its number, or undefined. */
  saveSnapshotData(group: number, snapshot: Snapshot): Promise<number | undefined>;
  /** Removes a snapshot data file no record needs any more (cleanup: a failure is left to the next open). */
  dropSnapshotData(file: number): Promise<void>;
  /** Why the engine stopped taking writes, if it did. */
  failure(): Error | undefined;
  readonly dir: string;
}

/**
 * One Raft group's log inside a RaftLogEngine: what DurableRaftLog is for a group with files of its
 * own (the same PersistentRaftLog), with its records in the engine's shared segments.
 *
 * - `persist` resolves once the engine's sync covering its records is done (or, with `sync` false,
 *   once they are written); only then do reads see them.
 * - `compact` and `installSnapshot` write one snapshot record (its data in a file of its own first,
 *   when large): the record is the switch, so a crash leaves the log as before or as after.
 * - One operation at a time per group, so its records reach the log in the order of the calls;
 *   different groups' operations go to the disk together.
 */
export class GroupRaftLog extends SerialLog implements PersistentRaftLog {
  /** Set by close or removal: later calls fail. */
  private ended: string | undefined;

  constructor(
    readonly id: number,
    private readonly writer: GroupLogWriter,
    memory: MemoryStorage,
    /** The snapshot data file the group's snapshot is in, if any. */
    private dataFile: number | undefined,
  ) {
    super(memory);
  }

  /** The records that restate this group's hard state and snapshot at the start of a new segment. */
  restated(): Uint8Array[] {
    const records: Uint8Array[] = [];
    const snapshot = this.memory.snapshot();
    if (snapshot.index > 0) records.push(snapshotRecord(this.id, { snapshot, replaces: false, file: this.dataFile }));
    const state = this.memory.hardState();
    if (state.term > 0 || state.vote > 0 || state.commit > 0) records.push(hardStateRecord(this.id, state));
    return records;
  }

  /** The data files this group's snapshot needs. */
  dataFiles(): number[] {
    return this.dataFile === undefined ? [] : [this.dataFile];
  }

  persist(hardState: HardState | undefined, entries: readonly Entry[], sync = true): Promise<void> {
    return this.exclusive(async () => {
      if (hardState === undefined && entries.length === 0) return;
      const first = entries[0]?.index;
      assert(
        first === undefined || (first > this.memory.snapshot().index && first <= this.memory.lastIndex() + 1),
        () =>
          `group ${this.id}: append at ${first} outside ${this.memory.firstIndex()}..${this.memory.lastIndex() + 1}`,
      );
      const records = [];
      if (entries.length > 0) records.push(entriesRecord(this.id, entries));
      if (hardState) records.push(hardStateRecord(this.id, hardState));
      await this.writer.write({
        group: this.id,
        bytes: Buffer.concat(records),
        sync,
        lastEntry: entries.at(-1)?.index,
        written: () => {
          this.memory.append(entries);
          if (hardState) this.memory.setHardState(hardState);
        },
      });
    });
  }

  compact(index: number, data: Uint8Array, conf: ConfState): Promise<void> {
    return this.exclusive(async () => {
      assert(
        index > this.memory.snapshot().index && index <= this.memory.lastIndex(),
        () => `group ${this.id}: compact to ${index} outside ${this.memory.firstIndex()}..${this.memory.lastIndex()}`,
      );
      const snapshot = { index, term: this.memory.term(index), data, conf };
      await this.replaceSnapshot(snapshot, false, () => this.memory.compact(index, data, conf));
    });
  }

  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.exclusive(() => this.replaceSnapshot(snapshot, true, () => this.memory.applySnapshot(snapshot)));
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      this.ended = "closed";
    });
  }

  /**
   * Writes the record that voids the group's records; after it, every call fails. `retire` keeps a
   * tombstone: the record names the term after this log's, which the group's next log here begins
   * at (the engine holds that log from the write on).
   */
  remove(retire = false): Promise<void> {
    return this.exclusive(async () => {
      const retiredTerm = retire ? this.memory.hardState().term + 1 : 0;
      await this.writer.write({
        group: this.id,
        bytes: removalRecord(this.id, retiredTerm),
        sync: true,
        voidsEarlier: true,
        removesGroup: true,
        ...(retire ? { tombstone: retiredTerm } : {}),
        written: () => {
          this.ended = "removed from this process";
        },
      });
      if (this.dataFile !== undefined) await this.writer.dropSnapshotData(this.dataFile);
    });
  }

  private async replaceSnapshot(snapshot: Snapshot, replaces: boolean, apply: () => void): Promise<void> {
    // A data file left behind by a failure below is named by no record: the next open removes it.
    const file = await this.writer.saveSnapshotData(this.id, snapshot);
    const previous = this.dataFile;
    await this.writer.write({
      group: this.id,
      bytes: snapshotRecord(this.id, { snapshot, replaces, file }),
      sync: true,
      voidsEarlier: replaces,
      written: () => {
        apply();
        this.dataFile = file;
      },
    });
    if (previous !== undefined && previous !== file) await this.writer.dropSnapshotData(previous);
  }

  protected refusal(): Error | undefined {
    if (this.ended !== undefined)
      return new HomeKvError("E_UNAVAILABLE", `the Raft log of group ${this.id} is ${this.ended}`);
    const failure = this.writer.failure();
    return failure && mustReopen(this.writer.dir, failure);
  }
}
