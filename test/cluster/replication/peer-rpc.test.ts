import { afterEach, expect, test } from "bun:test";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { createPeerRpc, NoAnswerError, type PeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { mulberry32 } from "../../../src/random.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** Two members over real loopback connections, each with its peer RPC. */
function pair(): { a: PeerRpc; b: PeerRpc; bugs: unknown[]; cutB: () => void } {
  const bugs: unknown[] = [];
  const [ta, tb] = ["a", "b"].map((nodeId) =>
    createPeerTransport({ clusterId: "t", nodeId, host: "127.0.0.1", port: 0 }),
  ) as [ReturnType<typeof createPeerTransport>, ReturnType<typeof createPeerTransport>];
  ta.addPeer("b", tb.address);
  tb.addPeer("a", ta.address);
  const [a, b] = [ta, tb].map((t) => createPeerRpc(peerChannels(t), { onBug: (e) => bugs.push(e) })) as [
    PeerRpc,
    PeerRpc,
  ];
  closers.push(
    () => a.close(),
    () => b.close(),
    () => ta.close(),
    () => tb.close(),
  );
  return { a, b, bugs, cutB: () => tb.close() };
}

test("a call reaches the method on the other member, which knows who called, and its answer comes back", async () => {
  const { a, b } = pair();
  b.handle("echo", async (from, request) => bytes(`${from} said ${text(request)}`));
  const answers = await Promise.all([1, 2, 3].map((i) => a.call("b", "echo", bytes(`hi ${i}`), 5_000)));
  expect(answers.map(text)).toEqual(["a said hi 1", "a said hi 2", "a said hi 3"]);
});

test("an expected error keeps its code and message; a bug is reported there and answered as unavailable", async () => {
  const { a, b, bugs } = pair();
  b.handle("refuse", async () => {
    throw new HomeKvError("E_NOT_LEADER", "member c is the leader");
  });
  b.handle("crash", async () => {
    throw new TypeError("oops");
  });
  const refused = await a.call("b", "refuse", bytes(""), 5_000).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(HomeKvError);
  expect([(refused as HomeKvError).code, (refused as HomeKvError).message]).toEqual([
    "E_NOT_LEADER",
    "member c is the leader",
  ]);
  const crashed = await a.call("b", "crash", bytes(""), 5_000).catch((e: unknown) => e);
  expect((crashed as HomeKvError).code).toBe("E_UNAVAILABLE");
  expect((crashed as HomeKvError).message).toBe("internal error on member b");
  expect(bugs).toHaveLength(1);
  const unknown = await a.call("b", "nothing-here", bytes(""), 5_000).catch((e: unknown) => e);
  expect((unknown as HomeKvError).code).toBe("E_INVALID");
});

test("a call with no answer in time, or waiting at close, is a NoAnswerError (it may have run); after close calls are refused", async () => {
  const { a, b, cutB } = pair();
  let ran = 0;
  b.handle("slow", () => {
    ran++;
    return new Promise(() => {});
  });
  const slow = await a.call("b", "slow", bytes(""), 200).catch((e: unknown) => e);
  expect(slow).toBeInstanceOf(NoAnswerError);
  expect(ran).toBe(1);
  cutB();
  const waiting = a.call("b", "slow", bytes(""), 60_000).catch((e: unknown) => e);
  a.close();
  // Sent, not answered: it may have run there.
  const closed = await waiting;
  expect(closed).toBeInstanceOf(NoAnswerError);
  expect((closed as HomeKvError).message).toBe("the member stopped before member b answered");
  // Not sent at all: a plain refusal.
  const refused = await a.call("b", "slow", bytes(""), 60_000).catch((e: unknown) => e);
  expect(refused).not.toBeInstanceOf(NoAnswerError);
  expect((refused as HomeKvError).message).toBe("the store is shutting down");
});

test("a member restarted numbers its calls afresh: an answer to its former self's call, which the peer queued while it was down, is not taken for one of its own", async () => {
  const tb = createPeerTransport({ clusterId: "t", nodeId: "b", host: "127.0.0.1", port: 0 });
  const b = createPeerRpc(peerChannels(tb), { onBug: () => {} });
  closers.push(
    () => b.close(),
    () => tb.close(),
  );
  const gates = new Map<string, () => void>();
  for (const method of ["slow", "fast"])
    b.handle(method, async () => {
      await new Promise<void>((resolve) => gates.set(method, resolve));
      return bytes(`answer to ${method}`);
    });
  /** Member a's process: its transport and peer RPC, its call ids drawn from `seed`. */
  const startA = (seed: number) => {
    const ta = createPeerTransport({ clusterId: "t", nodeId: "a", host: "127.0.0.1", port: 0 });
    ta.addPeer("b", tb.address);
    tb.addPeer("a", ta.address);
    const a = createPeerRpc(peerChannels(ta), { onBug: () => {}, random: mulberry32(seed) });
    closers.push(
      () => a.close(),
      () => ta.close(),
    );
    const stop = () => {
      a.close();
      ta.close();
    };
    return { a, stop };
  };
  // The first process calls "slow", and dies before b answers: b queues the answer for a.
  const first = startA(1);
  first.a.call("b", "slow", bytes(""), 60_000).catch(() => {});
  await waitFor(() => gates.has("slow"), { what: "b to take the first call" });
  first.stop();
  // The second calls "fast"; the answer to the first's call reaches it before the one to its own.
  const second = startA(2);
  const fast = second.a.call("b", "fast", bytes(""), 60_000);
  await waitFor(() => gates.has("fast"), { what: "b to take the second call" });
  gates.get("slow")!();
  await Promise.resolve();
  gates.get("fast")!();
  expect(text(await fast)).toBe("answer to fast");
});
