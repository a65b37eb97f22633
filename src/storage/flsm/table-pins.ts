/**
 * Tables a backup is linking or copying, which a compaction that removes them must not delete yet.
 * The engine deletes a table only once the manifest edit removing it is durable (a compaction's
 * inputs); with a pin on it, the file stays until the last pin is released, then goes. A crash
 * meanwhile leaves it an orphan, which the next start deletes (the manifest no longer names it).
 *
 *   pin([7, 8])          a backup captured a state naming 7 and 8
 *   delete(7)            a compaction removed 7: its file stays, doomed
 *   release()            7 is deleted now; 8 was never doomed and stays
 */
export class TablePins {
  private readonly counts = new Map<number, number>();
  private readonly doomed = new Set<number>();

  constructor(private readonly removeFile: (number: number) => Promise<void>) {}

  /** Pins `numbers`; resolves the returned release once every doomed table it let go is deleted. */
  pin(numbers: readonly number[]): () => Promise<void> {
    for (const number of numbers) this.counts.set(number, (this.counts.get(number) ?? 0) + 1);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      for (const number of numbers) {
        const count = this.counts.get(number)! - 1;
        if (count > 0) {
          this.counts.set(number, count);
          continue;
        }
        this.counts.delete(number);
        if (this.doomed.delete(number)) await this.removeFile(number);
      }
    };
  }

  /** Deletes the table's file now, or when the last pin on it is released. */
  async delete(number: number): Promise<void> {
    if (this.counts.has(number)) this.doomed.add(number);
    else await this.removeFile(number);
  }
}
