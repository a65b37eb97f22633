import { expect, test } from "bun:test";
import { text } from "./helpers/bytes.ts";
import { ROOT } from "./helpers/processes.ts";

test('the package exports its client: import { HomeKvClient } from "homekv"', async () => {
  const homekv = await import("homekv");
  expect(typeof homekv.HomeKvClient).toBe("function");
  expect(typeof homekv.startServer).toBe("function");
});

test("in-process: startServer and HomeKvClient talk to each other", async () => {
  const { HomeKvClient, startServer } = await import("homekv");
  const server = await startServer({ port: 0 });
  const client = new HomeKvClient({ address: server.address });
  try {
    await client.set({ hello: "world" });
    expect(text((await client.get(["hello"])).records[0]!.value)).toBe("world");
  } finally {
    client.close();
    await server.shutdown();
  }
});

test("the whole tree type-checks under strict TypeScript", () => {
  const result = Bun.spawnSync([`${ROOT}/node_modules/.bin/tsc`, "--noEmit", "-p", ROOT], { cwd: ROOT });
  expect(result.stdout.toString() + result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
}, 120_000);
