import { HomeKvError } from "../errors.ts";
import type { Database } from "../storage/database.ts";
import type { ScanOptions, ScanPage, Snapshot } from "../storage/mvcc/store.ts";

/**
 * Multi-page scans. The first page pins a snapshot at its revision; the continuation token names
 * it, so every later page reads the same revision even while writes go on and history is
 * compacted. Cursors are bounded in number and expire when idle; a page of an expired cursor is
 * still served from the store as long as its revision has not been compacted.
 *
 * Token: base64url of JSON {c: cursor id, r: revision, a: key to continue after, s/e: range,
 * v: reverse, k: keys only} — opaque to clients.
 */
export interface ScanRange {
  start?: string;
  end?: string;
  reverse: boolean;
  keysOnly: boolean;
}

/** What a continuation token names: the scan's range and revision, where to go on, and its cursor (0: none). */
export interface ScanToken extends ScanRange {
  cursor: number;
  revision: number;
  after: string;
}

/** Multi-page scans as the Scan handler serves them: a first page, then the pages continuations name. */
export interface Scans {
  first(range: ScanRange, size: PageSize, revision: number | undefined): ScanResult | Promise<ScanResult>;
  next(continuation: string, size: PageSize): ScanResult | Promise<ScanResult>;
  closeAll(): void;
}

export interface ScanResult extends ScanPage {
  revision: number;
  keysOnly: boolean;
  continuation: string;
}

/** How much one page may hold: records, and key and value bytes (at least one record either way). */
export interface PageSize {
  limit: number;
  bytesMax: number;
}

export class ScanCursors implements Scans {
  private readonly open = new Map<number, { snapshot: Snapshot; usedAtMs: number }>();
  private nextId = 1;

  constructor(
    private readonly db: Pick<Database, "revision" | "scan" | "openSnapshot">,
    private readonly options: { cursorsMax: number; idleMs: number; now: () => number },
  ) {}

  /** The first page of a new scan. */
  first(range: ScanRange, size: PageSize, revision: number | undefined): ScanResult {
    this.expireIdle();
    const latest = revision === undefined || revision === this.db.revision;
    // A pinned snapshot can only be taken at the latest revision; an older one is read unpinned.
    const snapshot = latest ? this.db.openSnapshot() : undefined;
    const at = snapshot?.revision ?? revision!;
    const page = snapshot ? snapshot.scan({ ...range, ...size }) : this.db.scan({ ...range, ...size, revision: at });
    if (page.next === undefined) {
      snapshot?.release();
      return { ...page, revision: at, keysOnly: range.keysOnly, continuation: "" };
    }
    const cursor = snapshot ? this.keep(snapshot) : 0;
    return {
      ...page,
      revision: at,
      keysOnly: range.keysOnly,
      continuation: encodeScanToken({ ...range, cursor, revision: at, after: page.next }),
    };
  }

  /** The next page of the scan a continuation token stands for. */
  next(continuation: string, size: PageSize): ScanResult {
    this.expireIdle();
    const token = decodeScanToken(continuation);
    const held = this.open.get(token.cursor);
    const options: Omit<ScanOptions, "revision"> = {
      start: token.start,
      end: token.end,
      reverse: token.reverse,
      after: token.after,
      ...size,
    };
    let page: ScanPage;
    if (held) {
      held.usedAtMs = this.options.now();
      page = held.snapshot.scan(options);
    } else {
      try {
        page = this.db.scan({ ...options, revision: token.revision });
      } catch (error) {
        if (error instanceof HomeKvError && error.code === "E_COMPACTED") {
          throw new HomeKvError(
            "E_COMPACTED",
            `this scan read revision ${token.revision}, which has been compacted since; start the scan again`,
          );
        }
        throw error;
      }
    }
    if (page.next === undefined) {
      this.close(token.cursor);
      return { ...page, revision: token.revision, keysOnly: token.keysOnly, continuation: "" };
    }
    return {
      ...page,
      revision: token.revision,
      keysOnly: token.keysOnly,
      continuation: encodeScanToken({ ...token, after: page.next }),
    };
  }

  get size(): number {
    return this.open.size;
  }

  closeAll(): void {
    for (const id of [...this.open.keys()]) this.close(id);
  }

  private keep(snapshot: Snapshot): number {
    // At the bound, the least recently used cursor gives way (its scan goes on unpinned).
    if (this.open.size >= this.options.cursorsMax) {
      let oldest: number | undefined;
      for (const [id, held] of this.open)
        if (oldest === undefined || held.usedAtMs < this.open.get(oldest)!.usedAtMs) oldest = id;
      this.close(oldest!);
    }
    const id = this.nextId++;
    this.open.set(id, { snapshot, usedAtMs: this.options.now() });
    return id;
  }

  private close(id: number): void {
    this.open.get(id)?.snapshot.release();
    this.open.delete(id);
  }

  private expireIdle(): void {
    const cutoff = this.options.now() - this.options.idleMs;
    for (const [id, held] of this.open) if (held.usedAtMs < cutoff) this.close(id);
  }
}

export function encodeScanToken(token: ScanToken): string {
  const compact = {
    c: token.cursor,
    r: token.revision,
    a: token.after,
    s: token.start,
    e: token.end,
    v: token.reverse ? 1 : 0,
    k: token.keysOnly ? 1 : 0,
  };
  return Buffer.from(JSON.stringify(compact)).toString("base64url");
}

export function decodeScanToken(continuation: string): ScanToken {
  let raw: { c?: unknown; r?: unknown; a?: unknown; s?: unknown; e?: unknown; v?: unknown; k?: unknown };
  try {
    raw = JSON.parse(Buffer.from(continuation, "base64url").toString("utf8"));
  } catch {
    throw new HomeKvError("E_INVALID", "continuation is not a token this server gave out");
  }
  const optionalString = (x: unknown) => x === undefined || typeof x === "string";
  if (
    typeof raw !== "object" ||
    raw === null ||
    !Number.isSafeInteger(raw.c) ||
    !Number.isSafeInteger(raw.r) ||
    typeof raw.a !== "string" ||
    !optionalString(raw.s) ||
    !optionalString(raw.e)
  ) {
    throw new HomeKvError("E_INVALID", "continuation is not a token this server gave out");
  }
  return {
    cursor: raw.c as number,
    revision: raw.r as number,
    after: raw.a,
    start: raw.s as string | undefined,
    end: raw.e as string | undefined,
    reverse: raw.v === 1,
    keysOnly: raw.k === 1,
  };
}
