/**
 * The engine's write amplification: bytes written to tables (flushes and compactions) per byte the
 * users wrote. PebblesDB's claim, and the figure `scripts/bench-engine.ts` compares with LevelDB's.
 *
 *   user writes 100 MB → flushes write 110 MB (level 0) → compactions read 300 MB, write 280 MB
 *   write amplification = (110 + 280) / 100 = 3.9
 */
export class WriteAmplification {
  userBytes = 0;
  flushBytes = 0;
  compactionBytesRead = 0;
  compactionBytesWritten = 0;
  compactions = 0;
  /** Table bytes written into each level: flushes into level 0, compactions into their target. */
  readonly writtenByLevel: number[] = [];

  /** Key and value bytes of one committed write. */
  recordUserWrite(bytes: number): void {
    this.userBytes += bytes;
  }

  /** A memtable flushed to a level-0 table of `bytes`. */
  recordFlush(bytes: number): void {
    this.flushBytes += bytes;
    this.addWritten(0, bytes);
  }

  /**
   * A compaction's bytes in (its input tables) and out (its output tables, all in `targetLevel`):
   * `runCompaction`'s result.
   */
  recordCompaction(result: { readonly bytesRead: number; readonly bytesWritten: number }, targetLevel: number): void {
    this.compactionBytesRead += result.bytesRead;
    this.compactionBytesWritten += result.bytesWritten;
    this.addWritten(targetLevel, result.bytesWritten);
    this.compactions++;
  }

  private addWritten(level: number, bytes: number): void {
    this.writtenByLevel[level] = (this.writtenByLevel[level] ?? 0) + bytes;
  }

  /** Table bytes written per user byte; 0 before any user write. */
  get ratio(): number {
    return this.userBytes === 0 ? 0 : (this.flushBytes + this.compactionBytesWritten) / this.userBytes;
  }
}
