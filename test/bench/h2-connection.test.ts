import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import fc from "fast-check";
import { H2Connection } from "../../src/bench/h2/connection.ts";
import { connectH2Pool } from "../../src/bench/h2-unary.ts";
import { encodeFrame, FLAG, FRAME, type Frame, frameBytes, PREFACE, readFrame } from "../../src/h2/frames.ts";
import { encodeLiterals, type Header } from "../../src/h2/hpack.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * The benchmark's own HTTP/2 client against node:http2's server (another implementation, with its
 * own HPACK encoder that indexes and Huffman-codes as it likes), on loopback.
 */
let server: http2.Http2Server | undefined;
const connections: H2Connection[] = [];

afterEach(async () => {
  for (const connection of connections.splice(0)) connection.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(
  handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void,
  settings?: http2.Settings,
): Promise<number> {
  server = http2.createServer(settings ? { settings } : {});
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => handler(stream as http2.ServerHttp2Stream, headers, Buffer.concat(chunks)));
    stream.on("error", () => {});
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

function connect(port: number): H2Connection {
  const connection = new H2Connection({ host: "127.0.0.1", port });
  connections.push(connection);
  return connection;
}

const requestBlock = (path: string) =>
  encodeLiterals([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
  ]);

describe("H2Connection against node:http2", () => {
  test("property: headers and trailers of many answers on one connection decode to what the server sent", async () => {
    // Header values sent back as the server received them in the request body (JSON), so each run's
    // answers differ; repeats and long values make the server's encoder index and evict.
    const port = await serve((stream, _headers, body) => {
      const { headers, trailers } = JSON.parse(body.toString()) as {
        headers: [string, string][];
        trailers: [string, string][];
      };
      stream.respond({ ":status": 200, ...Object.fromEntries(headers) }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(Object.fromEntries(trailers)));
      stream.end("answer");
    });
    const connection = connect(port);
    const name = fc
      .stringMatching(/^[a-z][a-z0-9-]{0,20}$/)
      .filter(
        (n) =>
          ![
            "content-length",
            "connection",
            "te",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
            "proxy-connection",
            "host",
          ].includes(n),
      );
    const value = fc
      .oneof(fc.stringMatching(/^[ -~]{0,40}$/), fc.stringMatching(/^[a-z]{1000,3000}$/))
      .map((v) => v.trim());
    const headerList = fc.uniqueArray(fc.tuple(name, value), { maxLength: 8, selector: ([n]) => n });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(headerList, headerList), { minLength: 1, maxLength: 6 }), async (answers) => {
        const results = await Promise.all(
          answers.map(
            ([headers, trailers]) =>
              connection.request(requestBlock("/echo"), Buffer.from(JSON.stringify({ headers, trailers }))).result,
          ),
        );
        for (const [i, result] of results.entries()) {
          if (!result.ok) throw new Error(result.error);
          const [headers, trailers] = answers[i]!;
          expect(result.headers.filter(([n]) => n !== ":status" && n !== "date")).toEqual(headers as Header[]);
          expect(result.trailers).toEqual(trailers as Header[]);
          expect(result.body.toString()).toBe("answer");
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  test("flow control both ways: 3 MiB up against the default 64 KiB windows, 3 MiB down", async () => {
    const down = Buffer.alloc(3 * 1024 * 1024, 7);
    const port = await serve((stream, _headers, body) => {
      stream.respond({ ":status": 200, "x-sha": createHash("sha256").update(body).digest("hex") });
      stream.end(down);
    });
    const up = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 31) & 0xff));
    const connection = connect(port);
    const results = await Promise.all([1, 2].map(() => connection.request(requestBlock("/big"), up).result));
    for (const result of results) {
      if (!result.ok) throw new Error(result.error);
      expect(result.headers).toContainEqual(["x-sha", createHash("sha256").update(up).digest("hex")]);
      expect(result.body.equals(down)).toBe(true);
    }
  }, 30_000);

  test("a header block over the peer's frame size goes out as HEADERS and CONTINUATION frames", async () => {
    const port = await serve(
      (stream, headers) => {
        stream.respond({ ":status": 200 });
        stream.end(String(headers["x-big"]).length.toString());
      },
      { maxHeaderListSize: 200_000 },
    );
    const big = "b".repeat(40_000);
    const block = encodeLiterals([
      [":method", "POST"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "localhost"],
      ["x-big", big],
    ]);
    const result = await connect(port).request(block, Buffer.from("x")).result;
    expect(result.ok && result.body.toString()).toBe("40000");
  });

  test("an answer without headers (node:http2's close() on a half-closed stream sends a bare END_STREAM) is an error, and the connection goes on", async () => {
    const port = await serve((stream, headers) => {
      if (headers[":path"] === "/close") stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else {
        stream.respond({ ":status": 200 });
        stream.end("fine");
      }
    });
    const connection = connect(port);
    const closed = await connection.request(requestBlock("/close"), Buffer.from("x")).result;
    expect(closed).toEqual({ ok: false, error: "the server sent data before the response headers" });
    const after = await connection.request(requestBlock("/ok"), Buffer.from("x")).result;
    expect(after.ok && after.body.toString()).toBe("fine");
  });

  test("GOAWAY: the streams past its last id fail with its reason, and so does every later request", async () => {
    let session: http2.ServerHttp2Session | undefined;
    const port = await serve((stream) => {
      session = stream.session as http2.ServerHttp2Session;
      stream.respond({ ":status": 200 });
      stream.end("first");
    });
    const connection = connect(port);
    const first = await connection.request(requestBlock("/"), Buffer.from("x")).result;
    expect(first.ok).toBe(true);
    session!.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    // The client acknowledges a PING sent after the GOAWAY only once it has read the GOAWAY.
    await new Promise((acked) => session!.ping(acked));
    const later = await connection.request(requestBlock("/"), Buffer.from("x")).result;
    expect(later).toEqual({ ok: false, error: expect.stringContaining("going away (GOAWAY") });
  });
});

describe("connectH2Pool", () => {
  test("a server that never answers costs one timeout: DEADLINE_EXCEEDED, and the stream is cancelled", async () => {
    let cancelled = false;
    const port = await serve(() => {});
    server!.on("stream", (stream) =>
      stream.on("close", () => (cancelled = stream.rstCode === http2.constants.NGHTTP2_CANCEL)),
    );
    const pool = connectH2Pool(`127.0.0.1:${port}`, 1, { timeoutMs: 300 });
    const started = performance.now();
    const result = await pool.call("/svc/Method", new Uint8Array([1, 2, 3]));
    expect(result.status).toBe(4);
    expect(result.message).toBe("no answer within 300 ms");
    expect(performance.now() - started).toBeLessThan(2_000);
    await waitFor(() => cancelled, { what: "the server to see the stream reset with CANCEL" });
    pool.close();
  });

  test("gRPC status and percent-encoded message from trailers, or from a trailers-only answer", async () => {
    const port = await serve((stream, headers, body) => {
      expect(headers["content-type"]).toBe("application/grpc");
      expect(headers.te).toBe("trailers");
      if (headers[":path"] === "/only") {
        stream.respond(
          {
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": "3",
            "grpc-message": "bad%20key%3A%20%C3%A9",
          },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(body); // echo: the 5-byte prefix and the message
    });
    const pool = connectH2Pool(`127.0.0.1:${port}`, 2);
    const ok = await pool.call("/echo", new Uint8Array([9, 8, 7]));
    expect(ok).toEqual({ status: 0, message: "", body: Buffer.from([9, 8, 7]) });
    expect(await pool.call("/only", new Uint8Array())).toEqual({
      status: 3,
      message: "bad key: é",
      body: Buffer.alloc(0),
    });
    pool.close();
  });

  test("nothing listening: status -1 with the socket's reason", async () => {
    const pool = connectH2Pool("127.0.0.1:1", 1);
    const result = await pool.call("/svc/Method", new Uint8Array());
    expect(result.status).toBe(-1);
    expect(result.message).toMatch(/ECONNREFUSED|refused/i);
    pool.close();
  });
});

type Send = (type: number, flags: number, id: number, payload?: Uint8Array) => void;

/**
 * A peer that answers with frames written by hand: what node:http2 never sends (padding, a
 * priority block, CONTINUATION, RST_STREAM, a zero window). `script` gets each frame the client
 * sends, but for the ACKs of the peer's own PINGs: `roundTrip` sends one and resolves when its ACK
 * is back, so everything the client wrote before it has arrived.
 */
async function scriptedPeer(script: (frame: Frame, send: Send) => void): Promise<{
  port: number;
  close: () => void;
  send: Send;
  roundTrip: () => Promise<void>;
}> {
  const { createServer } = await import("node:net");
  const sockets: import("node:net").Socket[] = [];
  const pings: (() => void)[] = [];
  const peer = createServer((socket) => {
    sockets.push(socket);
    let input = Buffer.alloc(0);
    let prefaceSeen = false;
    const send: Send = (type, flags, id, payload) => {
      if (!socket.destroyed) socket.write(encodeFrame(type, flags, id, payload));
    };
    send(FRAME.SETTINGS, 0, 0);
    socket.on("data", (data: Buffer) => {
      input = Buffer.concat([input, data]);
      if (!prefaceSeen) {
        if (input.length < PREFACE.length) return;
        input = input.subarray(PREFACE.length);
        prefaceSeen = true;
      }
      for (let frame = readFrame(input, 0); frame !== undefined; frame = readFrame(input, 0)) {
        input = input.subarray(frameBytes(frame));
        if (frame.type === FRAME.PING && frame.flags & FLAG.ACK) pings.shift()?.();
        else script(frame, send);
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
  // To the connection accepted last, at a moment the test chooses.
  const send: Send = (type, flags, id, payload) => sockets.at(-1)!.write(encodeFrame(type, flags, id, payload));
  return {
    port: (peer.address() as AddressInfo).port,
    send,
    roundTrip: () =>
      new Promise<void>((acked) => {
        pings.push(acked);
        send(FRAME.PING, 0, 0, new Uint8Array(8));
      }),
    close: () => {
      for (const socket of sockets) socket.destroy();
      peer.close();
    },
  };
}

describe("H2Connection against a scripted peer", () => {
  test("padded, prioritised headers split over CONTINUATION, padded data, then trailers; RST_STREAM on the next stream", async () => {
    // :status 200 (indexed 8), then a literal "x-long: <300 x>" (length 127 + 173: 0x7f 0xad 0x01) split across the two frames.
    const block = Buffer.concat([
      Buffer.from([0x88, 0x00, 0x06]),
      Buffer.from("x-long"),
      Buffer.from([0x7f, 0xad, 0x01]),
      Buffer.alloc(300, 0x78),
    ]);
    const peer = await scriptedPeer((frame, send) => {
      if (frame.type !== 0 || !(frame.flags & 0x1)) return; // answer once the request body has ended
      if (frame.streamId === 1) {
        const padded = (pad: number, body: Uint8Array, extra: Uint8Array = new Uint8Array()) =>
          Buffer.concat([Buffer.from([pad]), extra, body, Buffer.alloc(pad)]);
        send(1, 0x8 | 0x20, 1, padded(3, block.subarray(0, 100), Buffer.from([0, 0, 0, 0, 15]))); // PADDED | PRIORITY, no END_HEADERS
        send(9, 0x4, 1, block.subarray(100)); // CONTINUATION, END_HEADERS
        send(0, 0x8, 1, padded(5, Buffer.from("body"))); // DATA, PADDED
        send(
          1,
          0x4 | 0x1,
          1,
          Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.from("grpc-status"), Buffer.from([0x01, 0x30])]),
        ); // trailers
      } else send(3, 0, frame.streamId, Buffer.from([0, 0, 0, 2])); // RST_STREAM INTERNAL_ERROR
    });
    const connection = connect(peer.port);
    const [first, second] = await Promise.all([
      connection.request(requestBlock("/a"), Buffer.from("1")).result,
      connection.request(requestBlock("/b"), Buffer.from("2")).result,
    ]);
    expect(first).toEqual({
      ok: true,
      headers: [
        [":status", "200"],
        ["x-long", "x".repeat(300)],
      ],
      trailers: [["grpc-status", "0"]],
      body: Buffer.from("body"),
    });
    expect(second).toEqual({ ok: false, error: "the server reset the stream (HTTP/2 error code 2)" });
    peer.close();
  });

  test("a zero initial window holds the body back until WINDOW_UPDATE, then it goes out in frames the window allows", async () => {
    const received: { id: number; bytes: number; end: boolean }[] = [];
    let settingsAcked = 0;
    let headersSeen = 0;
    const peer = await scriptedPeer((frame, send) => {
      if (frame.type === 4) {
        if (frame.flags & 0x1) settingsAcked++;
        else send(4, 0, 0, Buffer.from([0, 4, 0, 0, 0, 0])); // INITIAL_WINDOW_SIZE = 0
        return;
      }
      if (frame.type === 1) headersSeen++;
      if (frame.type === 0) {
        received.push({ id: frame.streamId, bytes: frame.payload.length, end: (frame.flags & 0x1) !== 0 });
        if (frame.flags & 0x1) {
          send(1, 0x4, frame.streamId, Buffer.from([0x88]));
          send(
            1,
            0x4 | 0x1,
            frame.streamId,
            Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.from("grpc-status"), Buffer.from([0x01, 0x30])]),
          );
        }
      }
    });
    const connection = connect(peer.port);
    // The client has applied the zero window once it acknowledged both of the peer's SETTINGS frames.
    await waitFor(() => settingsAcked === 2, { what: "the client's ACKs of both SETTINGS frames" });
    const { id, result } = connection.request(requestBlock("/"), Buffer.alloc(25_000, 1));
    await waitFor(() => headersSeen === 1, { what: "the request's HEADERS" });
    await peer.roundTrip();
    expect(received).toEqual([]);
    // Grant 10,000 bytes on the stream: exactly that much goes out, the stream not yet ended.
    peer.send(8, 0, id, Buffer.from([0, 0, 0x27, 0x10]));
    await waitFor(() => received.length > 0, { what: "DATA after the WINDOW_UPDATE" });
    await peer.roundTrip();
    expect(received).toEqual([{ id, bytes: 10_000, end: false }]);
    peer.send(8, 0, id, Buffer.from([0, 1, 0, 0]));
    expect((await result).ok).toBe(true);
    expect(received.reduce((sum, r) => sum + r.bytes, 0)).toBe(25_000);
    expect(received.at(-1)!.end).toBe(true);
    peer.close();
  });
});
