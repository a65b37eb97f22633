import { describe, expect, test } from "bun:test";
import { WatchRequest } from "../../../src/gen/homekv_service.ts";
import { encodeFrame, FLAG, FRAME, readFrames } from "../../../src/h2/frames.ts";
import { HpackDecoder } from "../../../src/h2/hpack.ts";
import { DEADLINE_BUCKET_MS, Deadlines } from "../../../src/server/h2/deadlines.ts";
import { useTarget } from "../../hardening/harness.ts";
import { clientPreface, connectRaw, grpcCallFrames } from "../../helpers/raw-h2.ts";
import { waitForWatchers } from "../../helpers/server.ts";
import { waitFor } from "../../helpers/wait.ts";

/** A call that notes when it expired, in ms after `startedMs`. */
function call(startedMs: number) {
  const expired: number[] = [];
  return { expired, expire: () => expired.push(performance.now() - startedMs) };
}

describe("Deadlines: one timer per bucket of calls", () => {
  test("each call expires once, no earlier than its deadline and within a bucket of it (plus timer slack)", async () => {
    const deadlines = new Deadlines();
    const startedMs = performance.now();
    const calls = [20, 20, 35, 60].map((ms) => ({ ms, ...call(startedMs) }));
    for (const c of calls) deadlines.add(c, c.ms);
    await waitFor(() => calls.every((c) => c.expired.length > 0), { what: "every call to expire" });
    for (const c of calls) {
      expect(c.expired).toHaveLength(1);
      expect(c.expired[0]!).toBeGreaterThanOrEqual(c.ms - 1); // timers may round to the millisecond
      // Bucketed: at most one bucket late, and the machine's timer slack (a shared, loaded host).
      expect(c.expired[0]!).toBeLessThan(c.ms + DEADLINE_BUCKET_MS + 200);
    }
  });

  test("calls due in the same bucket share it; one taken out before its deadline never expires", async () => {
    const clock = { nowMs: 1_000 };
    const deadlines = new Deadlines(() => clock.nowMs);
    const startedMs = performance.now();
    const [ended, other, later] = [call(startedMs), call(startedMs), call(startedMs)];
    const bucket = deadlines.add(ended, 21);
    expect(deadlines.add(other, 22)).toBe(bucket); // both due at 1,030
    bucket.delete(ended);
    deadlines.add(later, 45);
    clock.nowMs = 1_050; // the clock the buckets are due by has passed both when the timers run
    await waitFor(() => later.expired.length > 0, { what: "the later call to expire" });
    expect(other.expired).toHaveLength(1);
    expect(ended.expired).toHaveLength(0);
  });
});

describe("grpc-timeout on the native server", () => {
  const server = useTarget(["--grpc-server", "native"]);

  test("a Watch with grpc-timeout 200m ends with DEADLINE_EXCEEDED from the server, and its watcher is gone", async () => {
    const watch = WatchRequest.encode(WatchRequest.fromPartial({ prefix: "deadline/" })).finish();
    const connection = await connectRaw(server.port);
    const startedMs = performance.now();
    connection.write(
      Buffer.concat([
        clientPreface(),
        encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0),
        grpcCallFrames(1, "/homekv_service.HomeKvService/Watch", watch, [["grpc-timeout", "200m"]]),
      ]),
    );
    const ended = (received: Buffer) =>
      readFrames(received).some((f) => f.type === FRAME.HEADERS && f.flags & FLAG.END_STREAM);
    expect(await connection.waitUntil(ended, 5_000)).toBe(true);
    const elapsedMs = performance.now() - startedMs;
    const decoder = new HpackDecoder();
    const headers = readFrames(connection.received())
      .filter((f) => f.type === FRAME.HEADERS)
      .flatMap((f) => decoder.decode(f.payload));
    expect(headers).toContainEqual(["grpc-status", "4"]); // DEADLINE_EXCEEDED
    expect(elapsedMs).toBeGreaterThanOrEqual(190);
    await waitForWatchers(server.client, 0);
    connection.destroy();
  });
});
