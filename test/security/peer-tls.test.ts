import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { type ServerProcess, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";
import { makeTestCerts, type TestCerts } from "./certs.ts";

/**
 * A replicated cluster whose servers have TLS with a client CA: the peers speak mutual TLS with the
 * servers' certificates, and clients reach every member over TLS.
 */
let certs: TestCerts;
const members: ServerProcess[] = [];
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(async () => {
  await Promise.all(members.splice(0).map((member) => member.stop("SIGKILL")));
  certs.cleanup();
});

test("three members with --tls-cert and --tls-client-ca replicate over mutual TLS; a write through one reads through another", async () => {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  for (const name of names) {
    members.push(
      await startServerProcess(
        [
          ...cluster.memberArgs(name),
          ...["--tls-cert", certs.server.cert, "--tls-key", certs.server.key, "--tls-client-ca", certs.ca],
        ],
        { env: { HOMEKV_CLUSTER_TOKEN: "peer-tls-test" } },
      ),
    );
  }
  const tls = {
    ca: readFileSync(certs.ca),
    cert: readFileSync(certs.client.cert),
    key: readFileSync(certs.client.key),
  };
  const clients = members.map((member) => new HomeKvClient({ address: member.address, tls, timeoutMs: 3_000 }));
  try {
    // Any member takes the write once the peers, over TLS, have elected a leader.
    await waitFor(
      async () => {
        try {
          await clients[0]!.set({ secret: "kept" });
          return true;
        } catch {
          return false;
        }
      },
      { what: "a write through n1 (a leader elected over the peers' TLS links)", timeoutMs: 20_000 },
    );
    for (const client of clients) expect(text((await client.get(["secret"])).records[0]!.value)).toBe("kept");
    const metrics = await Promise.all(clients.map((client) => client.metrics()));
    expect(metrics.filter((m) => m.raftRole === "leader")).toHaveLength(1);
  } finally {
    for (const client of clients) client.close();
  }
});
