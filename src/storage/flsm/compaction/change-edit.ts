import type { LevelChange } from "../levels/level-set.ts";
import type { VersionEdit } from "../manifest/version-edit.ts";

/**
 * The version edit that logs `change`, item for item in the order the level set applies it: tables
 * removed, guards added, tables added (a table names its guard, which must already be in the level).
 */
export function levelChangeEdit(change: LevelChange): VersionEdit {
  return [
    ...change.removed.map(({ level, number }) => ({ kind: "remove-table" as const, number, level })),
    ...change.guardsAdded.map(({ level, key }) => ({ kind: "add-guard" as const, level, key })),
    ...change.added.map(({ level, guard, table }) => {
      const { number, sizeBytes, smallest, largest, minRevision, maxRevision, entries } = table;
      const meta = { number, level, fileBytes: sizeBytes, smallest, largest, minRevision, maxRevision, entries };
      return { kind: "add-table" as const, table: guard === null ? meta : { ...meta, guard } };
    }),
  ];
}
