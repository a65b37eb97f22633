import { afterEach, describe, expect, test } from "bun:test";
import { type FaultyTransport, withFaults } from "../../../src/cluster/transport/index.ts";
import { mulberry32 } from "../../../src/random.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { closeAll, introduce, startNode } from "./nodes.ts";

afterEach(closeAll);

interface FaultyNode {
  id: string;
  faulty: FaultyTransport;
  received: string[];
}

/** Two real transports on loopback, each wrapped, connected to each other. */
async function pair(seed: number): Promise<[FaultyNode, FaultyNode]> {
  const inner = [startNode("a"), startNode("b")];
  introduce(inner);
  const nodes = inner.map((node, i) => {
    const received: string[] = [];
    const faulty = withFaults(node.transport, mulberry32(seed + i));
    faulty.onMessage((from, payload) => received.push(`${from}:${text(payload)}`));
    return { id: node.id, faulty, received };
  }) as [FaultyNode, FaultyNode];
  for (const [from, to] of [nodes, [nodes[1], nodes[0]]] as const) {
    await waitFor(() => from.faulty.stats().peers[to.id]?.connected, { what: `${from.id} to connect to ${to.id}` });
  }
  return nodes;
}

function send(from: FaultyNode, to: FaultyNode, words: readonly string[]): void {
  for (const word of words) from.faulty.send(to.id, bytes(word));
}

/** Waits until `node` has received `word` (each test ends a phase with a marker sent after the faults). */
function waitForWord(node: FaultyNode, word: string): Promise<unknown> {
  return waitFor(() => node.received.some((line) => line.endsWith(`:${word}`)), {
    what: `${node.id} to receive ${word}`,
    detail: () => node.received.join(", "),
  });
}

describe("fault-injecting transport", () => {
  test("drops the given fraction of what is sent, the rest arriving in order", async () => {
    const [a, b] = await pair(7);
    a.faulty.setDropRate(0.3);
    const words = Array.from({ length: 1_000 }, (_, i) => `m${i}`);
    send(a, b, words);
    const { dropped } = a.faulty.faultStats();
    expect(dropped).toBeGreaterThan(200);
    expect(dropped).toBeLessThan(400);
    await waitFor(() => b.received.length === words.length - dropped, {
      what: `b to receive the ${words.length - dropped} payloads not dropped`,
      detail: () => `${b.received.length}`,
    });
    const indexes = b.received.map((line) => Number(line.slice("a:m".length)));
    expect(indexes).toEqual([...indexes].sort((x, y) => x - y));
  });

  test("a one-way partition cuts one direction only, and heals", async () => {
    const [a, b] = await pair(1);
    a.faulty.partition(["b"], "outbound");
    send(a, b, ["cut-1", "cut-2"]);
    send(b, a, ["b-to-a"]);
    await waitForWord(a, "b-to-a");
    a.faulty.heal(["b"]);
    send(a, b, ["healed"]);
    await waitForWord(b, "healed");
    // What was sent before the heal would have come first, over the same connection.
    expect(b.received).toEqual(["a:healed"]);
    expect(a.faulty.faultStats().partitioned).toBe(2);

    b.faulty.partition(["a"], "inbound");
    send(a, b, ["cut-3"]);
    send(b, a, ["still-out"]);
    await waitForWord(a, "still-out");
    b.faulty.heal();
    send(a, b, ["healed-again"]);
    await waitForWord(b, "healed-again");
    expect(b.received).toEqual(["a:healed", "a:healed-again"]);
    // The connection stayed up all along: a partition drops payloads, not sockets.
    expect(a.faulty.stats().peers.b!.reconnects).toBe(0);
  });

  test("a two-way partition cuts both directions", async () => {
    const [a, b] = await pair(2);
    a.faulty.partition(["b"]);
    send(a, b, ["x"]);
    send(b, a, ["y"]);
    await waitFor(() => a.faulty.faultStats().partitioned === 2, {
      what: "a to drop what b sent it",
      detail: () => JSON.stringify(a.faulty.faultStats()),
    });
    a.faulty.heal();
    send(a, b, ["after"]);
    send(b, a, ["after"]);
    await waitForWord(a, "after");
    await waitForWord(b, "after");
    expect([a.received, b.received]).toEqual([["b:after"], ["a:after"]]);
  });

  test("delays what is sent, keeping order when the delay is fixed", async () => {
    const [a, b] = await pair(3);
    a.faulty.setDelay(150);
    const sentAt = performance.now();
    send(a, b, ["d1", "d2", "d3"]);
    await waitForWord(b, "d3");
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(150);
    expect(b.received).toEqual(["a:d1", "a:d2", "a:d3"]);
    expect(a.faulty.faultStats().delayed).toBe(3);
    // A payload whose delay ends inside a partition is dropped.
    send(a, b, ["late"]);
    a.faulty.partition(["b"], "outbound");
    await waitFor(() => a.faulty.faultStats().partitioned === 1, { what: "the delayed payload to meet the partition" });
  });
});
