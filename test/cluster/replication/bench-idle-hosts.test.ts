import { expect, test } from "bun:test";

test("scripts/bench-idle-hosts.ts runs three host processes both ways, kills one, and prints their CPU (smoke run)", async () => {
  const run = Bun.spawn(
    [process.execPath, "scripts/bench-idle-hosts.ts", "--groups", "8", "--seconds", "1", "--tick-ms", "20"],
    { cwd: `${import.meta.dir}/../../..`, stdout: "pipe", stderr: "pipe" },
  );
  const [out, err, code] = await Promise.all([
    new Response(run.stdout).text(),
    new Response(run.stderr).text(),
    run.exited,
  ]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  expect(out).toMatch(/^\| off \| [\d.]+% \| [\d.]+%, [\d.]+%, [\d.]+% \| \d+ \|$/m);
  expect(out).toMatch(/^\| on \| [\d.]+% \| [\d.]+%, [\d.]+%, [\d.]+% \| \d+ \|$/m);
  // The two left once the third is killed: their groups went quiet again without it.
  expect(out).toMatch(/^\| on, one node killed \| [\d.]+% \| [\d.]+%, [\d.]+% \| \d+ \|$/m);
}, 60_000);
