import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { buildBinary } from "../../scripts/build.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";
import { healthCheck, reflect } from "./reflection-client.ts";

// The compiled binary has no .proto beside it: health and reflection must work from what is embedded.
const scratch = scratchDir("homekv-bin-discovery-");
let server: ServerProcess;

beforeAll(async () => {
  const binary = buildBinary(join(scratch.path, "homekv"));
  server = await startServerProcess(["--in-memory"], { command: [binary], cwd: scratch.path });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  scratch.cleanup();
});

test("the compiled binary serves health and reflection", async () => {
  expect(await healthCheck(server.address)).toEqual({ status: "SERVING" });
  const [answer] = await reflect(server.address, [{ listServices: "" }]);
  expect(answer!.listServicesResponse!.service.map((s) => s.name)).toContain("homekv_service.HomeKvService");
});
