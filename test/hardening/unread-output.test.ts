import { describe, expect, test } from "bun:test";
import { encodeFrame, FLAG, FRAME, PREFACE } from "../../src/h2/frames.ts";
import { H2_LIMITS } from "../../src/server/h2/settings.ts";
import { connectRaw, countFrames, floodUntilStalled } from "../helpers/raw-h2.ts";
import { waitFor } from "../helpers/wait.ts";
import { expectCleanServerLog, expectServes, mib, probeRss, rssSettledUnder, useTarget } from "./harness.ts";

/**
 * Frames the native server makes itself, not gRPC messages, for a client that sends and never reads
 * them: answers decided from the headers alone, RST_STREAM refusals. The gRPC messages' own bound
 * (H2_LIMITS.outputBytesMax) does not count them; what holds them is that the server reads no more
 * of a connection whose socket has not taken what it wrote (H2_LIMITS.outputPauseBytes), and the
 * rapid-reset budget that its own resets draw on. Before, every frame was kept: 4 million refusals
 * took the server's RSS from 77 to 388 MiB.
 */

const server = useTarget(["--grpc-server", "native"], { each: true });
const MIB = 1024 * 1024;
/** Frames per write: 10,000 frames of 9 bytes. */
const BATCH = 10_000;

/** A header-only frame opening stream `id`: an empty header block, ending the stream or not. */
const emptyHeaders = (id: number, endStream: boolean) =>
  encodeFrame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), id);

/** `BATCH` empty header blocks on the streams that follow `firstId`. */
function headersBatch(firstId: number, endStream: boolean): Buffer {
  return Buffer.concat(Array.from({ length: BATCH }, (_, i) => emptyHeaders(firstId + 2 * i, endStream)));
}

describe("a client that sends and never reads what the server makes itself", () => {
  test("up to 2 million requests answered from their headers alone (415, no handler), unread: the server stops reading, memory bounded; every one is answered once the client reads", async () => {
    const probe = probeRss(server.proc.pid);
    const connection = await connectRaw(server.port, { read: false });
    const answers = countFrames(
      connection.socket,
      (type, flags) => type === FRAME.HEADERS && (flags & FLAG.END_STREAM) !== 0,
    );
    connection.write(
      Buffer.concat([PREFACE, encodeFrame(FRAME.SETTINGS, 0, 0), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0)]),
    );
    // Each 9-byte request (no method, no content type) is answered at once with a 14-byte HEADERS
    // frame (:status 415), none of them a gRPC message.
    const batches = 200;
    const started = performance.now();
    const written = await floodUntilStalled(connection, (i) => headersBatch(1 + 2 * BATCH * i, true), batches, 2_000);
    const sent = written * BATCH;
    console.log(
      `requests written before the server stopped reading: ${sent} (${mib(sent * 9)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    await expectServes(server, "a client that does not read its answers");
    // The server reads no more than the kernel's socket buffers let its answers out (its own, and
    // the client's) and holds 1 MiB of answers. How many requests the client got written says
    // little: this machine's kernel grows a receive buffer up to 32 MiB (tcp_rmem), more than the
    // whole flood, so a server busy elsewhere may not have read any of it yet (a CI run saw all 2
    // million written). Its memory says it: the streams it opened and answered leave garbage (the
    // peak) that the collector gives back within seconds. Before, it read them all and kept every
    // answer: 77 → 325 MiB, for good. 20 s: beside another test file's servers (two files at a
    // time) the collector once took longer than 8 s to come within 2 MiB of the bound.
    await rssSettledUnder(server.proc.pid, probe.beforeBytes + 32 * MIB, 20_000);
    probe.stop(`${sent} requests written by a client that does not read`);

    // The client reads at last: the server goes on where it stopped, and every request is answered.
    connection.socket.resume();
    await waitFor(() => answers.count === sent, {
      what: `${sent} answers of 415`,
      timeoutMs: 8_000,
      intervalMs: 50,
      detail: () => `${answers.count} came`,
    });
    expect(connection.closed).toBe(false);
    connection.destroy();
    // Answering them all left more garbage than the flood: on an idle machine it went back to the
    // system in 0.3 to 8 s over ten runs, so a retention still shows as a wait that never ends.
    await rssSettledUnder(server.proc.pid, probe.beforeBytes + 32 * MIB, 20_000);
    await expectServes(server, "the late reader");
    expectCleanServerLog(server);
  }, 60_000);

  test("1,000 streams held open, then up to 2 million more refused (REFUSED_STREAM): the refusals end the connection, memory bounded", async () => {
    const probe = probeRss(server.proc.pid);
    const connection = await connectRaw(server.port, { read: false });
    const open = H2_LIMITS.concurrentStreamsMax;
    const holding = Array.from({ length: open }, (_, i) => emptyHeaders(1 + 2 * i, false));
    connection.write(
      Buffer.concat([PREFACE, encodeFrame(FRAME.SETTINGS, 0, 0), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...holding]),
    );
    const batches = 200;
    const written = await floodUntilStalled(
      connection,
      (i) => headersBatch(1 + 2 * (open + BATCH * i), false),
      batches,
      2_000,
    );
    console.log(`refused streams written: ${written * BATCH} (${mib(written * BATCH * 9)} MiB)`);
    const held = probe.mark("after a flood of refused streams from a client that does not read");
    expect(held - probe.beforeBytes).toBeLessThan(48 * MIB);
    // Refusals past the rapid-reset budget end the connection (GOAWAY ENHANCE_YOUR_CALM, unread here).
    expect(await connection.waitClosed(5_000)).toBe(true);
    const after = probe.stop("a flood of refused streams");
    expect(after.peakBytes - probe.beforeBytes).toBeLessThan(64 * MIB);
    await expectServes(server, "a flood of refused streams");
    expectCleanServerLog(server);
  }, 30_000);
});
