import { expect, test } from "bun:test";
import { PeerLiveness } from "../../../src/cluster/replication/peer-liveness.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startMetaGroup } from "../meta/meta-nodes.ts";

/**
 * The pings share the node's peer RPC, whose calls waiting at once are bounded (10,000); past it a
 * call is refused at once. Calls to one slow peer (a paused leader: each partition call waits 2 s)
 * can fill it, and then the pings to the healthy peers are refused too: the node takes every peer
 * for down, and its followers forget their leaders in every group (RaftDriver: leaderUnreachable).
 */
test("a healthy peer is not suspected because calls to another, slow peer fill the call table", async () => {
  const nodes = await startMetaGroup();
  const [n1, n2] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  const livenesses = nodes.map(
    (node) =>
      new PeerLiveness({
        rpc: node.rpc,
        peers: ["n1", "n2", "n3"].filter((name) => name !== `n${node.id}`),
        intervalMs: 20,
        suspectAfterMs: 200,
      }),
  );
  for (const liveness of livenesses) liveness.start();
  // n2 holds every call (a slow partition leader); n1 sends it 10,000.
  n2.rpc.handle("slow", () => new Promise(() => {}));
  const held = Array.from({ length: 10_000 }, () =>
    n1.rpc.call("n2", "slow", new Uint8Array(0), 30_000).catch(() => {}),
  );
  // n3 answers everything at once; wait a few suspicion periods.
  const started = performance.now();
  await waitFor(() => performance.now() - started > 1_000, { what: "a second", intervalMs: 50 });
  expect(livenesses[0]!.suspects("n3")).toBe(false);
  for (const liveness of livenesses) liveness.stop();
  void held;
}, 60_000);
