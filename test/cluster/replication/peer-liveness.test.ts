import { expect, test } from "bun:test";
import { PeerLiveness } from "../../../src/cluster/replication/peer-liveness.ts";
import type { PeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import { VirtualTime } from "./sim/virtual-time.ts";

/** Peer RPC to peers that answer a ping 5 ms later unless paused (then never: the call times out, unanswered). */
function pings(time: VirtualTime) {
  const paused = new Set<string>();
  const rpc: PeerRpc = {
    call: (to, _method, _request, timeoutMs) =>
      new Promise((resolve, reject) => {
        if (paused.has(to)) time.schedule(timeoutMs, () => reject(new Error("no answer")));
        else time.schedule(5, () => resolve(new Uint8Array(0)));
      }),
    handle: () => {},
    close: () => {},
  };
  return { rpc, paused };
}

test("a peer that stops answering is suspected once silent past the bound, and not before; answering again clears it", async () => {
  const time = new VirtualTime();
  const { rpc, paused } = pings(time);
  const liveness = new PeerLiveness({
    rpc,
    peers: ["a", "b"],
    intervalMs: 100,
    suspectAfterMs: 500,
    timers: time.timersOf({ alive: true, pausedUntil: 0 }),
  });
  liveness.start();
  await time.runUntil(2_000, 10_000);
  expect([liveness.suspects("a"), liveness.suspects("b")]).toEqual([false, false]);
  paused.add("a");
  await time.runUntil(2_450, 10_000);
  expect(liveness.suspects("a")).toBe(false); // silent 350-450 ms: within the bound
  await time.runUntil(2_700, 10_000);
  expect([liveness.suspects("a"), liveness.suspects("b")]).toEqual([true, false]);
  paused.delete("a");
  await time.runUntil(2_900, 10_000);
  expect(liveness.suspects("a")).toBe(false);
  // A node it never heard of is no suspect (it is not watched).
  expect(liveness.suspects("c")).toBe(false);
  liveness.stop();
});
