/**
 * What an engine put in a backup: the data directory's protocol (backup-dir.ts) and the FLSM
 * engine's tables (flsm/backup-tables.ts) both speak it, so it stands apart from either.
 */
export interface BackupContents {
  /** The revision the backup holds: every command up to it, none after it. */
  revision: number;
  /** Live keys at that revision. */
  keys: number;
  /** Bytes of its data files. */
  bytes: number;
  /** Those of them that are hard links to the server's own files (disk space shared with it). */
  linkedBytes: number;
}
