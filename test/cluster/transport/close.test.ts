import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { waitFor } from "../../helpers/wait.ts";

test("close() leaves no timer or socket open: a process that closed its transports exits by itself", async () => {
  const script = resolve(import.meta.dir, "exit-after-close.ts");
  // Its pending timers and handshakes are a minute long: an exit within seconds means close() ended them.
  const proc = Bun.spawn([process.execPath, script], { stdout: "pipe", stderr: "pipe", timeout: 30_000 });
  const exit = { code: null as number | null };
  void proc.exited.then((code) => (exit.code = code));
  const printed = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  try {
    await waitFor(() => exit.code !== null, {
      what: "the process to exit after closing its transports",
      timeoutMs: 10_000,
    });
  } finally {
    proc.kill("SIGKILL");
  }
  const [stdout, stderr] = await printed;
  expect({ exitCode: exit.code, stdout, stderr }).toEqual({ exitCode: 0, stdout: "closed\n", stderr: "" });
});
