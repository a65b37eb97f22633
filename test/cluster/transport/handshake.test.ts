import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { backoffDelayMs } from "../../../src/cluster/transport/backoff.ts";
import {
  checkProof,
  decodeHandshake,
  encodeHandshake,
  type HandshakeMessage,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  proveHandshake,
} from "../../../src/cluster/transport/handshake.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";

const input = {
  token: "s3cret",
  clusterId: "c1",
  dialerId: "n1",
  acceptorId: "n2",
  dialerNonce: randomBytes(NONCE_BYTES),
  acceptorNonce: randomBytes(NONCE_BYTES),
};

describe("handshake messages", () => {
  test("each kind reads back as written", () => {
    const messages: HandshakeMessage[] = [
      { kind: "hello", version: PROTOCOL_VERSION, clusterId: "c1", from: "n1", to: "n2", nonce: input.dialerNonce },
      {
        kind: "welcome",
        version: PROTOCOL_VERSION,
        clusterId: "c1",
        from: "n2",
        nonce: input.acceptorNonce,
        proof: proveHandshake("acceptor", input),
      },
      { kind: "proof", proof: proveHandshake("dialer", input) },
      { kind: "accept" },
      { kind: "refuse", reason: "wrong token", duplicate: false },
      { kind: "refuse", reason: "duplicate connection", duplicate: true },
    ];
    for (const message of messages) expect(decodeHandshake(encodeHandshake(message))).toEqual(message);
  });

  test("another version is named, whatever follows it", () => {
    const hello = encodeHandshake({
      kind: "hello",
      version: 7,
      clusterId: "c",
      from: "a",
      to: "b",
      nonce: input.dialerNonce,
    });
    expect(decodeHandshake(hello.subarray(0, 5))).toEqual({ kind: "version", version: 7 });
  });

  test("malformed messages are FormatErrors", () => {
    const accept = encodeHandshake({ kind: "accept" });
    expect(() => decodeHandshake(new Uint8Array([9]))).toThrow(FormatError);
    expect(() => decodeHandshake(new Uint8Array([...accept, 0]))).toThrow(FormatError);
    const shortNonce = encodeHandshake({
      kind: "hello",
      version: PROTOCOL_VERSION,
      clusterId: "c",
      from: "a",
      to: "b",
      nonce: new Uint8Array(8),
    });
    expect(() => decodeHandshake(shortNonce)).toThrow(FormatError);
  });
});

describe("handshake proofs", () => {
  test("hold only for the same token, role, ids and both nonces", () => {
    const proof = proveHandshake("dialer", input);
    expect(checkProof("dialer", input, proof)).toBe(true);
    expect(checkProof("dialer", { ...input, token: "other" }, proof)).toBe(false);
    expect(checkProof("dialer", { ...input, token: "" }, proof)).toBe(false);
    // An acceptor's proof is no dialer's: it cannot be reflected back.
    expect(checkProof("acceptor", input, proof)).toBe(false);
    expect(checkProof("dialer", { ...input, clusterId: "c2" }, proof)).toBe(false);
    expect(checkProof("dialer", { ...input, dialerId: "n3" }, proof)).toBe(false);
    // A recorded proof replayed against a fresh nonce of the other side fails.
    expect(checkProof("dialer", { ...input, acceptorNonce: randomBytes(NONCE_BYTES) }, proof)).toBe(false);
    expect(checkProof("dialer", input, proof.subarray(0, 16))).toBe(false);
  });
});

describe("backoffDelayMs", () => {
  const options = { backoffInitialMs: 50, backoffMaxMs: 2_000 };
  test("doubles from the initial delay to the cap, keeping at least half of each step", () => {
    const low = (failures: number) => backoffDelayMs(failures, () => 0, options);
    const high = (failures: number) => backoffDelayMs(failures, () => 0.999_999, options);
    expect([0, 1, 2, 6, 7, 1_000].map(low)).toEqual([25, 50, 100, 1_000, 1_000, 1_000]);
    expect(high(0)).toBeCloseTo(50, 3);
    expect(high(1_000)).toBeCloseTo(2_000, 2);
  });
});
