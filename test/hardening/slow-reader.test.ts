import { describe, expect, test } from "bun:test";
import { HomeKvClient, type WatchEvent } from "../../src/client/client.ts";
import { WatchRequest, WatchResponse } from "../../src/gen/homekv_service.ts";
import { encodeFrame, FLAG, FRAME, readFrames } from "../../src/h2/frames.ts";
import { clientPreface, connectRaw, grpcCallFrames, type RawConnection } from "../helpers/raw-h2.ts";
import { waitForWatchers } from "../helpers/server.ts";
import {
  expectCleanServerLog,
  expectNoStackTrace,
  expectRssWithin,
  expectServes,
  probeRss,
  useTarget,
} from "./harness.ts";

/**
 * Clients that open Watch streams (the only server-streaming RPC; Scan is paged unary calls) and
 * never read them: they never give back HTTP/2 flow-control window (WINDOW_UPDATE), so the server can
 * send each connection 64 KiB in all, and one of them does not even read its socket. The server must
 * hold only a bounded backlog for them, end a watcher that falls too far behind, and serve everyone
 * else — other watchers included — meanwhile.
 */

const WATCH = "/homekv_service.HomeKvService/Watch";
const watchAll = WatchRequest.encode(WatchRequest.fromPartial({ prefix: "w/" })).finish();

const server = useTarget([], { each: true });

/** A connection with `streams` Watch calls on w/ that never returns a byte of flow-control window. */
async function openStuckWatches(streams: number, options: { read: boolean }): Promise<RawConnection> {
  const connection = await connectRaw(server.port, { read: options.read });
  const calls = Array.from({ length: streams }, (_, i) => grpcCallFrames(1 + 2 * i, WATCH, watchAll));
  connection.write(Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...calls]));
  return connection;
}

/** Collects what an honest watcher of w/ sees, until it has `revisions` revisions or `signal` aborts. */
async function watchHonestly(revisions: number, signal: AbortSignal): Promise<number[]> {
  const seen: number[] = [];
  const watcher = new HomeKvClient({ address: server.address });
  try {
    for await (const event of watcher.watch({ prefix: "w/" }, signal) as AsyncGenerator<WatchEvent>) {
      if (seen.at(-1) !== event.revision) seen.push(event.revision);
      if (seen.length === revisions) break;
    }
  } finally {
    watcher.close();
  }
  return seen;
}

describe("a client that opens Watch streams and never reads", () => {
  test("200 stuck streams on 2 connections, 100 revisions of 8 KiB: others served, an honest watcher gets everything, memory bounded", async () => {
    const probe = probeRss(server.proc.pid);
    const stuck = [await openStuckWatches(100, { read: true }), await openStuckWatches(100, { read: false })];
    const honestDone = new AbortController();
    const honest = watchHonestly(100, honestDone.signal);
    await waitForWatchers(server.client, 201);

    const value = new Uint8Array(8 * 1024).fill(42);
    const revisions: number[] = [];
    const started = performance.now();
    for (let i = 0; i < 100; i++) revisions.push((await server.client.set({ [`w/${i % 10}`]: value })).revision);
    console.log(`100 sets while 200 watch streams were stuck took ${(performance.now() - started).toFixed(0)} ms`);
    await expectServes(server, "while 200 watch streams are stuck");
    const timeout = setTimeout(() => honestDone.abort(), 10_000);
    expect(await honest).toEqual(revisions);
    clearTimeout(timeout);
    probe.mark("with 200 stuck watch streams after 100 revisions of 8 KiB");

    // What got through to the stuck connection that reads: at most one flow-control window (64 KiB) of
    // DATA, whole WatchResponses, and nothing else but headers.
    const data = readFrames(stuck[0]!.received()).filter((f) => f.type === FRAME.DATA);
    expect(data.reduce((sum, f) => sum + f.payload.length, 0)).toBeLessThanOrEqual(65_535);
    expectNoStackTrace(stuck[0]!.received().toString("latin1"));

    for (const connection of stuck) connection.destroy();
    await waitForWatchers(server.client, 0);
    const after = probe.stop("200 stuck watch streams, 100 revisions of 8 KiB, then closed");
    // Everything written to the stuck streams in all: 200 × 100 × 8 KiB = 160 MiB.
    expectRssWithin(probe, after, 64);
    await expectServes(server, "stuck watch streams");
    expectCleanServerLog(server);
  }, 20_000);

  test("a stuck watcher is ended once 10,000 events wait for it; when its client reads at last it gets the status, no stack trace", async () => {
    const probe = probeRss(server.proc.pid);
    const connection = await openStuckWatches(1, { read: true });
    await waitForWatchers(server.client, 1);
    // 150 revisions of 100 keys: 15,000 events, over the 10,000 a watcher may have waiting (grpc-js
    // takes 16 messages more into its own buffer before it says to wait).
    const batch = (i: number) => Object.fromEntries(Array.from({ length: 100 }, (_, k) => [`w/${k}`, `value ${i}`]));
    for (let i = 0; i < 150; i++) await server.client.set(batch(i));
    await waitForWatchers(server.client, 0);

    // The client opens its flow-control windows (connection and stream) and reads what waited.
    const window = Buffer.alloc(4);
    window.writeUInt32BE(0x7fff_ffff - 65_535);
    connection.write(
      Buffer.concat([encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, window), encodeFrame(FRAME.WINDOW_UPDATE, 0, 1, window)]),
    );
    const trailers = (received: Buffer) =>
      readFrames(received).some(
        (f) => f.streamId === 1 && f.type === FRAME.HEADERS && (f.flags & FLAG.END_STREAM) !== 0,
      );
    expect(await connection.waitUntil(trailers, 5_000)).toBe(true);
    expectNoStackTrace(connection.received().toString("latin1"));
    // The messages before the status are whole revisions, in order, with no gap.
    const body = Buffer.concat(
      readFrames(connection.received())
        .filter((f) => f.type === FRAME.DATA)
        .map((f) => f.payload),
    );
    const delivered: number[] = [];
    for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) {
      delivered.push(WatchResponse.decode(body.subarray(at + 5, at + 5 + body.readUInt32BE(at + 1))).revision);
    }
    expect(delivered.length).toBeGreaterThan(0);
    expect(delivered).toEqual(delivered.map((_, i) => delivered[0]! + i));
    connection.destroy();
    const after = probe.stop("a watcher ended after 15,000 events were written for it");
    expectRssWithin(probe, after, 64);
    await expectServes(server, "a stuck watcher ended");
  }, 20_000);

  test("memory stays bounded however many connections open stuck Watch streams; honest watchers still get every revision", async () => {
    const probe = probeRss(server.proc.pid);
    // 6 connections × 40 streams that never give back window, half of them not even reading the socket.
    const stuck = await Promise.all(Array.from({ length: 6 }, (_, i) => openStuckWatches(40, { read: i % 2 === 0 })));
    await waitForWatchers(server.client, 240);
    const abort = new AbortController();
    const honest = watchHonestly(3, abort.signal);
    await waitForWatchers(server.client, 241);
    // Three commits of 4 MiB each (4 values of 1 MiB): every stuck stream would want its own
    // serialized copy of each (240 × 4 MiB); the honest watcher may queue all three (under 16 MiB).
    const big = new Uint8Array(1024 * 1024).fill(1);
    for (let commit = 0; commit < 3; commit++) {
      await server.client.set(Object.fromEntries(Array.from({ length: 4 }, (_, k) => [`w/${commit}/${k}`, big])));
    }
    const timer = setTimeout(() => abort.abort(), 25_000);
    const seen = await honest;
    clearTimeout(timer);
    expect(seen).toHaveLength(3);
    await expectServes(server, "with 240 stuck watch streams");
    const held = probe.mark("240 stuck watch streams, three 4 MiB commits");
    for (const connection of stuck) connection.destroy();
    const after = probe.stop("240 stuck watch streams, three 4 MiB commits, then closed");
    // Before the budget: 77 MiB → 1.1 GiB. Now the serialized copies in flight are bounded by half
    // of --max-watch-buffer-bytes (64 MiB) whatever the number of streams; stuck ones are reset.
    // With grpc-js the peak (280–350 MiB above the start) is mostly the 4 MiB requests and their
    // copies on the way in; 1 MiB HTTP/2 windows (src/server/flow-control.ts) let them in faster, some
    // 40 MiB more. The native server serializes a message only once its stream has window
    // (src/server/h2/stream.ts): about 115 MiB above the start, where serializing each stuck
    // stream's copy at once (then dropping it at the reset) peaked at 490.
    expect(after.peakBytes - probe.beforeBytes).toBeLessThan(480 * 1024 * 1024);
    expect(held).toBeGreaterThan(0);
    expectCleanServerLog(server);
  }, 45_000);

  test("memory stays bounded however many stuck watchers queue small events; the furthest behind are ended", async () => {
    const probe = probeRss(server.proc.pid);
    // 1,000 raw streams on w/ that never give back window, half of them on sockets never read.
    const stuck = await Promise.all(Array.from({ length: 10 }, (_, i) => openStuckWatches(100, { read: i % 2 === 0 })));
    const abort = new AbortController();
    const honestRevisions = 2_000;
    const honest = watchHonestly(honestRevisions, abort.signal);
    await waitForWatchers(server.client, 1_001);

    // 3,000 small commits, 6 at a time: 2,000 on w/ (every watcher), 1,000 on wx/ (none). Each stuck
    // stream would queue 2,000 events: 2 million in all.
    const value = "v".repeat(100);
    const onW: number[] = [];
    const started = performance.now();
    for (let round = 0; round < 500; round++) {
      const commits = await Promise.all(
        Array.from({ length: 6 }, (_, k) =>
          server.client.set({ [`${k % 3 === 2 ? "wx" : "w"}/${k}/${round}`]: value }),
        ),
      );
      for (const [k, { revision }] of commits.entries()) if (k % 3 !== 2) onW.push(revision);
    }
    onW.sort((a, b) => a - b);
    console.log(`3,000 small sets while 1,000 watchers were stuck took ${(performance.now() - started).toFixed(0)} ms`);
    const timer = setTimeout(() => abort.abort(), 20_000);
    expect(await honest).toEqual(onW);
    clearTimeout(timer);
    await expectServes(server, "with 1,000 stuck watchers behind");
    const left = (await server.client.metrics()).watchers;
    console.log(`watchers left after the small commits: ${left} of 1,000 stuck`);
    expect(left).toBeLessThan(1_000);
    probe.mark("1,000 stuck watchers, 3,000 small commits");

    for (const connection of stuck) connection.destroy();
    await waitForWatchers(server.client, 0);
    const after = probe.stop("1,000 stuck watchers, 3,000 small commits, then closed");
    // Before the queues were counted together: 77 → ~900 MiB. Now they hold at most half of
    // --max-watch-buffer-bytes (64 MiB of ~170-byte batches), the rest is the streams themselves.
    expect(after.peakBytes - probe.beforeBytes).toBeLessThan(360 * 1024 * 1024);
    expectCleanServerLog(server);
  }, 45_000);
});
