/**
 * Reads never wait for an fsync. A 12 MiB Set goes to a real server (fsync always) while another
 * connection keeps reading. The test watches the WAL on disk: once the batch's bytes are in the
 * segment file, the server's write(2) is done and its fsync is under way (the batch becomes visible
 * only after it). A Get that starts a little after that moment and answers before the Set resolves,
 * without seeing the batch, was served while the fsync ran.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { startOn, walBytesOnDisk } from "../helpers/durability.ts";
import { type ServerProcess, scratchDir } from "../helpers/processes.ts";

const RECORDS = 12;
const VALUE_BYTES = 1024 * 1024;
const ATTEMPTS = 5;
/**
 * The server calls fsync as soon as its write(2) returns (one thread-pool completion later). A Get
 * counts only when it starts this long after the bytes were seen: a Get that slips in between the
 * write and the fsync call proves nothing.
 */
const SYNC_STARTED_AFTER_MS = 3;
/** Bounds of the read loop of one attempt. */
const GETS_MAX = 5_000;
const ATTEMPT_MS_MAX = 20_000;

const dir = scratchDir("homekv-reads-");
let server: ServerProcess;
let writer: HomeKvClient;
let reader: HomeKvClient;

beforeAll(async () => {
  server = await startOn(dir.path, ["--fsync", "always"]);
  // Separate connections: the reads must not queue behind the large upload on one HTTP/2 stream.
  writer = new HomeKvClient({ address: server.address, timeoutMs: 30_000 });
  reader = new HomeKvClient({ address: server.address, timeoutMs: 30_000 });
  await writer.set({ existing: "here" });
  await reader.get(["existing"]);
});

afterAll(async () => {
  writer?.close();
  reader?.close();
  await server?.stop();
  dir.cleanup();
});

interface Attempt {
  setMs: number;
  /** When the batch's bytes were first seen in the WAL (ms after the Set was sent). */
  writtenAtMs: number | undefined;
  gets: number;
  /** Gets that started after the fsync had begun and answered before the Set resolved. */
  duringSync: { startMs: number; endMs: number }[];
  maxGetMs: number;
  maxGetAt: string;
  partialReads: number;
}

async function attempt(round: number): Promise<Attempt> {
  const keys = Array.from({ length: RECORDS }, (_, i) => `big/${round}/${i}`);
  const value = new Uint8Array(VALUE_BYTES).fill(round + 1);
  const walBefore = walBytesOnDisk(dir.path);
  const t0 = performance.now();
  let setMs: number | undefined;
  const set = writer.set(keys.map((key) => [key, value] as const)).then(() => {
    setMs = performance.now() - t0;
  });

  const result: Attempt = {
    setMs: 0,
    writtenAtMs: undefined,
    gets: 0,
    duringSync: [],
    maxGetMs: 0,
    maxGetAt: "",
    partialReads: 0,
  };
  for (let i = 0; i < GETS_MAX && setMs === undefined && performance.now() - t0 < ATTEMPT_MS_MAX; i++) {
    if (result.writtenAtMs === undefined && walBytesOnDisk(dir.path) - walBefore >= RECORDS * VALUE_BYTES) {
      result.writtenAtMs = performance.now() - t0;
    }
    const writtenBefore = result.writtenAtMs !== undefined;
    const startMs = performance.now() - t0;
    const { records } = await reader.get(["existing", ...keys]);
    const endMs = performance.now() - t0;
    result.gets++;
    expect(text(records[0]!.value)).toBe("here");
    const present = records.slice(1).filter((r) => r.value !== undefined).length;
    // The slowest small answer (a Get that sees the batch carries 12 MiB back: not a stall).
    if (present === 0 && endMs - startMs > result.maxGetMs) {
      result.maxGetMs = endMs - startMs;
      result.maxGetAt = `${startMs.toFixed(1)}→${endMs.toFixed(1)} ms`;
    }
    // The batch is visible whole or not at all.
    if (present !== 0 && present !== RECORDS) result.partialReads++;
    const syncSurelyRunning = writtenBefore && startMs >= result.writtenAtMs! + SYNC_STARTED_AFTER_MS;
    if (syncSurelyRunning && setMs === undefined && present === 0) result.duringSync.push({ startMs, endMs });
  }
  await set;
  result.setMs = setMs!;
  // Once the Set has resolved, the whole batch reads back.
  const after = await reader.get(keys);
  expect(after.records.every((r) => r.value?.byteLength === VALUE_BYTES && r.value[0] === round + 1)).toBe(true);
  return result;
}

test("Gets answer while a 12 MiB Set waits for its fsync, and never see part of it", async () => {
  const attempts: Attempt[] = [];
  for (let round = 0; round < ATTEMPTS; round++) {
    const result = await attempt(round);
    attempts.push(result);
    console.log(
      `attempt ${round}: Set of ${RECORDS} x 1 MiB resolved after ${result.setMs.toFixed(1)} ms; ` +
        `bytes in the WAL after ${result.writtenAtMs?.toFixed(1) ?? "(not seen)"} ms; ` +
        `${result.gets} Gets during the Set (slowest that did not see the batch ${result.maxGetMs.toFixed(1)} ms, at ${result.maxGetAt}); ` +
        `${result.duringSync.length} of them started ≥ ${SYNC_STARTED_AFTER_MS} ms after the write(2) and answered before the Set resolved` +
        (result.duringSync.length > 0
          ? ` (first ${result.duringSync[0]!.startMs.toFixed(1)}→${result.duringSync[0]!.endMs.toFixed(1)} ms, ` +
            `last ${result.duringSync.at(-1)!.startMs.toFixed(1)}→${result.duringSync.at(-1)!.endMs.toFixed(1)} ms)`
          : ""),
    );
    expect(result.partialReads).toBe(0);
    if (result.duringSync.length > 0 && attempts.length >= 2) break;
  }
  expect(attempts.some((a) => a.duringSync.length > 0)).toBe(true);
}, 120_000);
