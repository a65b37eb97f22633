import { type LevelChange, LevelSet } from "./levels/level-set.ts";
import type { TableMeta } from "./levels/table-meta.ts";
import type { ManifestView } from "./manifest/manifest-state.ts";
import type { TableMeta as ManifestTable, VersionEdit } from "./manifest/version-edit.ts";

/**
 * The level set and the manifest describe the same tables in two shapes: the level set groups
 * them by level and guard for reads and picking (levels/), the manifest logs them with their
 * level and guard for replay (manifest/). These turn one into the other.
 */

/** A manifest table as the level set holds it. */
export function levelTable({
  number,
  fileBytes,
  smallest,
  largest,
  minRevision,
  maxRevision,
  entries,
}: ManifestTable): TableMeta {
  return { number, sizeBytes: fileBytes, smallest, largest, minRevision, maxRevision, entries };
}

/** The level set the manifest's state describes, with at least `levelCount` levels. */
export function levelSetOf(state: ManifestView, levelCount: number): LevelSet {
  const levels = state.levels();
  const guardsAdded: { level: number; key: Uint8Array }[] = [];
  const added: LevelChange["added"][number][] = [];
  for (const [level, guards] of levels.entries())
    for (const { key, tables } of guards) {
      if (key !== undefined) guardsAdded.push({ level, key });
      for (const table of tables) added.push({ level, guard: key ?? null, table: levelTable(table) });
    }
  return LevelSet.empty(Math.max(levelCount, levels.length)).apply({ removed: [], guardsAdded, added });
}

/** A level change as manifest items, in the order the level set applies it (removed, guards, added). */
export function editOf(change: LevelChange): VersionEdit {
  return [
    ...change.removed.map(({ level, number }) => ({ kind: "remove-table" as const, number, level })),
    ...change.guardsAdded.map(({ level, key }) => ({ kind: "add-guard" as const, level, key })),
    ...change.added.map(({ level, guard, table }) => ({
      kind: "add-table" as const,
      table: {
        number: table.number,
        level,
        ...(guard === null ? {} : { guard }),
        fileBytes: table.sizeBytes,
        smallest: table.smallest,
        largest: table.largest,
        minRevision: table.minRevision,
        maxRevision: table.maxRevision,
        entries: table.entries,
      },
    })),
  ];
}
