import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { serveConfig } from "../../src/cli/resolve-serve-config.ts";
import { SERVE_SETTINGS } from "../../src/cli/serve-settings.ts";
import { resolveSettings } from "../../src/cli/settings.ts";
import { HomeKvClient } from "../../src/client/client.ts";
import type { ServeConfig } from "../../src/node/serve-config.ts";
import { type NodeLog, startNode } from "../../src/node/start-node.ts";
import { scratchDir } from "../helpers/processes.ts";

/** The config `homekv serve` would start from these flags (on loopback, any free ports). */
function configOf(flags: Record<string, string | boolean>): ServeConfig {
  return serveConfig(resolveSettings(SERVE_SETTINGS, { flags: { host: "127.0.0.1", port: "0", ...flags }, env: {} }));
}

function collectingLog(): NodeLog & { lines: string[] } {
  const lines: string[] = [];
  const add = (message: string) => lines.push(message);
  return { lines, debug: add, info: add, warn: add, error: (message, error) => add(`${message} ${error}`) };
}

const port = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

test("a node with every part on serves, and one stop() stops every part", async () => {
  const log = collectingLog();
  const node = await startNode(
    configOf({ "in-memory": true, "http-port": "0", "gossip-port": "0", "history-duration": "1m" }),
    log,
  );
  expect(node.httpAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(node.gossipAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  const client = new HomeKvClient({ address: node.address, timeoutMs: 2_000 });
  try {
    expect((await client.set({ k: "v" })).revision).toBe(1);
    expect((await fetch(`http://${node.httpAddress}/readyz`)).status).toBe(200);
    await node.stop();
    const refused = await client.get(["k"]).then(
      () => "answered",
      (error: Error) => error.message,
    );
    expect(refused).toContain(`cannot reach HomeKV at ${node.address}`);
    expect(await fetch(`http://${node.httpAddress}/readyz`).catch(() => "closed")).toBe("closed");
    expect(log.lines.filter((line) => line.startsWith("internal error"))).toEqual([]);
  } finally {
    client.close();
  }
});

test("a part that cannot start stops what started before it: the gRPC port is free again", async () => {
  const first = await startNode(configOf({ "in-memory": true, "http-port": "0", "gossip-port": "0" }), collectingLog());
  // A port that was free a moment ago: the failing starts bind it, and must let it go again.
  const probe = await startNode(configOf({ "in-memory": true }), collectingLog());
  await probe.stop();
  const grpcPort = String(port(probe.address));
  try {
    const takenPorts: Record<string, string>[] = [
      { "http-port": String(port(first.httpAddress!)) },
      { "gossip-port": String(port(first.gossipAddress!)) },
    ];
    for (const taken of takenPorts) {
      const failed = await startNode(configOf({ "in-memory": true, port: grpcPort, ...taken }), collectingLog()).then(
        () => "started",
        (error: Error) => error.message,
      );
      expect(failed).not.toBe("started");
      const again = await startNode(configOf({ "in-memory": true, port: grpcPort }), collectingLog());
      await again.stop();
    }
  } finally {
    await first.stop();
  }
});

test("a replicated member whose peer port is taken fails to start and lets go of its data directory", async () => {
  const dir = scratchDir("homekv-member-");
  const squatter = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const flags = {
      "data-dir": dir.path,
      "node-id": "n1",
      "initial-cluster": `n1=127.0.0.1:${squatter.port}`,
    };
    const failed = await startNode(configOf({ ...flags, "peer-port": String(squatter.port) }), collectingLog()).then(
      () => "started",
      (error: Error) => error.message,
    );
    expect(failed).toContain("cannot listen for peers");
    // The directory lock was let go (within this process a LOCK of its own pid would be taken over,
    // so the file itself is what shows it), and the same member starts on another port.
    expect(existsSync(`${dir.path}/LOCK`)).toBe(false);
    const node = await startNode(configOf({ ...flags, "peer-port": "0" }), collectingLog());
    await node.stop();
  } finally {
    squatter.stop(true);
    dir.cleanup();
  }
});
