import { AssertionError } from "../../../errors.ts";
import { compareKeyBytes } from "../entry.ts";
import type { EditItem, TableMeta, VersionEdit } from "./version-edit.ts";

/** Levels 0..LEVELS_MAX-1: a bound of format version 1 (PebblesDB uses 7). */
export const LEVELS_MAX = 16;

/** An edit that does not fit the state it is applied to: a bug in the engine, or (on replay) damage. */
export class InvalidEditError extends AssertionError {}

/** One guard of a level and its tables; `key` is absent for the sentinel range below the first guard. */
export interface GuardView {
  readonly key?: Uint8Array;
  /** By file number, oldest first. */
  readonly tables: readonly TableMeta[];
}

/** What readers of the state may see (the manifest hands this out, so that only it applies edits). */
export interface ManifestView {
  readonly nextFileNumber: number;
  readonly flushedRevision: number;
  readonly compactedRevision: number;
  /** The store's live keys and value bytes at the flushed revision (0 and 0 until a flush records them). */
  readonly liveTotals: { readonly keys: number; readonly valueBytes: number };
  table(number: number): TableMeta | undefined;
  /** Level `level`'s guards in key order, the sentinel first (level 0 has only the sentinel). */
  guards(level: number): GuardView[];
  /** The levels 0..deepest holding a table or guard, each as `guards(level)`. */
  levels(): GuardView[][];
  /** The file numbers of every table, ascending. */
  liveFiles(): number[];
  /** The whole state as one edit that, applied to an empty state, gives this one. */
  snapshot(): VersionEdit;
}

/**
 * The tables that make up the engine, as replaying version edits leaves them. Pure: no I/O.
 *
 *   apply [add guard 2:"m"]                               level 2 guards: (sentinel), "m"
 *   apply [add table 7 at 2 in "m" ("m".."q"), next 8]    "m" holds 7
 *   apply [remove 7 at 2, add 8 at 3 ..., next 9]         7 gone; a crash keeps both items or neither
 *
 * `apply` checks each item against the state as the items before it left it, and undoes the
 * edit's earlier items before throwing, so a refused edit changes nothing.
 */
export class ManifestState implements ManifestView {
  private readonly tables = new Map<number, TableMeta>();
  /** Per level, guard keys by their hex form. */
  private readonly guardKeys = new Map<number, Map<string, Uint8Array>>();
  private next = 1;
  private flushed = 0;
  private compacted = 0;
  private totals = { keys: 0, valueBytes: 0 };

  get nextFileNumber(): number {
    return this.next;
  }

  get flushedRevision(): number {
    return this.flushed;
  }

  get compactedRevision(): number {
    return this.compacted;
  }

  get liveTotals(): { readonly keys: number; readonly valueBytes: number } {
    return this.totals;
  }

  apply(edit: VersionEdit): void {
    this.applyUndoable(edit);
  }

  /** Applies `edit` and returns what undoes it (the manifest undoes an edit that did not reach the disk). */
  applyUndoable(edit: VersionEdit): () => void {
    const undos: (() => void)[] = [];
    const undo = () => {
      for (const step of undos.reverse()) step();
    };
    try {
      for (const item of edit) undos.push(this.applyItem(item));
      for (const item of edit) {
        if (item.kind === "add-table" && item.table.number >= this.next)
          refuse(`table ${item.table.number} is not below the next file number ${this.next}`);
      }
    } catch (error) {
      undo();
      throw error;
    }
    return undo;
  }

  table(number: number): TableMeta | undefined {
    return this.tables.get(number);
  }

  guards(level: number): GuardView[] {
    const keys = [...(this.guardKeys.get(level)?.values() ?? [])].sort(compareKeyBytes);
    const groups: TableMeta[][] = [[], ...keys.map(() => [])];
    for (const table of [...this.tables.values()].sort((a, b) => a.number - b.number)) {
      if (table.level !== level) continue;
      // The guard holding the table's first key, not the one it was logged in: a compaction adds a
      // guard to deeper levels too, and the tables there after its key move into it (level-set.ts).
      const at = guardHolding(keys, table.smallest);
      const { guard: _logged, ...rest } = table;
      groups[at + 1]!.push(at < 0 ? rest : { ...rest, guard: keys[at]! });
    }
    return groups.map((tables, at) => (at === 0 ? { tables } : { key: keys[at - 1]!, tables }));
  }

  levels(): GuardView[][] {
    let deepest = -1;
    for (const table of this.tables.values()) deepest = Math.max(deepest, table.level);
    for (const level of this.guardKeys.keys()) deepest = Math.max(deepest, level);
    return Array.from({ length: deepest + 1 }, (_, level) => this.guards(level));
  }

  liveFiles(): number[] {
    return [...this.tables.keys()].sort((a, b) => a - b);
  }

  snapshot(): VersionEdit {
    const edit: EditItem[] = [
      { kind: "next-file-number", number: this.next },
      { kind: "flushed-revision", revision: this.flushed },
      { kind: "compacted-revision", revision: this.compacted },
    ];
    // Left out at zero: the empty state encodes as it did before the item existed.
    if (this.totals.keys !== 0 || this.totals.valueBytes !== 0) edit.push({ kind: "live-totals", ...this.totals });
    const levels = this.levels();
    for (const [level, guards] of levels.entries())
      for (const { key } of guards) if (key) edit.push({ kind: "add-guard", level, key });
    // Each table as logged: the guard a table names is one the state had when it was added.
    for (const number of this.liveFiles()) edit.push({ kind: "add-table", table: this.tables.get(number)! });
    return edit;
  }

  /** Applies one item, or throws having changed nothing; returns its undo. */
  private applyItem(item: EditItem): () => void {
    switch (item.kind) {
      case "add-table":
        return this.addTable(item.table);
      case "remove-table": {
        const table = this.tables.get(item.number);
        if (!table) refuse(`table ${item.number} is removed but not in the state`);
        if (table.level !== item.level)
          refuse(`table ${item.number} is removed from level ${item.level} but is at level ${table.level}`);
        this.tables.delete(item.number);
        return () => this.tables.set(item.number, table);
      }
      case "add-guard": {
        checkLevel(item.level);
        if (item.level === 0) refuse("level 0 has no guards");
        if (item.key.byteLength === 0) refuse(`an empty guard key at level ${item.level}`);
        let keys = this.guardKeys.get(item.level);
        if (!keys) this.guardKeys.set(item.level, (keys = new Map()));
        const key = hex(item.key);
        if (keys.has(key)) refuse(`guard ${key} (hex) is added twice at level ${item.level}`);
        keys.set(key, item.key);
        const levelKeys = keys;
        return () => {
          levelKeys.delete(key);
          if (levelKeys.size === 0) this.guardKeys.delete(item.level);
        };
      }
      case "next-file-number":
        return this.raise(
          "next file number",
          item.number,
          () => this.next,
          (n) => (this.next = n),
        );
      case "flushed-revision":
        return this.raise(
          "flushed revision",
          item.revision,
          () => this.flushed,
          (n) => (this.flushed = n),
        );
      case "compacted-revision":
        return this.raise(
          "compacted revision",
          item.revision,
          () => this.compacted,
          (n) => (this.compacted = n),
        );
      case "live-totals": {
        // Not a counter: the totals go down as keys are deleted.
        const before = this.totals;
        this.totals = { keys: item.keys, valueBytes: item.valueBytes };
        return () => {
          this.totals = before;
        };
      }
    }
  }

  private addTable(table: TableMeta): () => void {
    const { number, level, guard } = table;
    if (!Number.isSafeInteger(number) || number < 1) refuse(`table number ${number}`);
    if (this.tables.has(number)) refuse(`table ${number} is added but already in the state`);
    checkLevel(level);
    if (guard) {
      if (level === 0) refuse(`table ${number} at level 0 names a guard`);
      if (!this.guardKeys.get(level)?.has(hex(guard)))
        refuse(`table ${number} names guard ${hex(guard)} (hex), not added at level ${level}`);
      if (compareKeyBytes(table.smallest, guard) < 0) refuse(`table ${number} starts below its guard`);
    }
    if (compareKeyBytes(table.smallest, table.largest) > 0)
      refuse(`table ${number}'s smallest key is above its largest`);
    if (table.minRevision > table.maxRevision) refuse(`table ${number}'s min revision is above its max`);
    if (table.entries < 1 || table.fileBytes < 1) refuse(`table ${number} is empty`);
    this.tables.set(number, table);
    return () => this.tables.delete(number);
  }

  /** Sets a counter that never goes back. */
  private raise(what: string, value: number, get: () => number, set: (n: number) => void): () => void {
    const before = get();
    if (value < before) refuse(`${what} goes back from ${before} to ${value}`);
    set(value);
    return () => set(before);
  }
}

function refuse(reason: string): never {
  throw new InvalidEditError(`invalid manifest edit: ${reason}`);
}

function checkLevel(level: number): void {
  if (!Number.isInteger(level) || level < 0 || level >= LEVELS_MAX)
    refuse(`level ${level} is not 0..${LEVELS_MAX - 1}`);
}

/** The index in `keys` (sorted) of the last one at or before `key`; -1 when all are after it. */
function guardHolding(keys: readonly Uint8Array[], key: Uint8Array): number {
  let low = -1;
  let high = keys.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (compareKeyBytes(keys[middle]!, key) <= 0) low = middle;
    else high = middle - 1;
  }
  return low;
}

function hex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}
