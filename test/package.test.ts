import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { text } from "./helpers/bytes.ts";
import { ROOT, runHomekv, scratchDir, startServerProcess } from "./helpers/processes.ts";

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

function run(command: string[], cwd: string): string {
  const result = Bun.spawnSync(command, { cwd, stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  const output = result.stdout.toString();
  if (result.exitCode !== 0)
    throw new Error(`${command.join(" ")} failed (${result.exitCode}):\n${output}${result.stderr}`);
  return output;
}

interface LockEntry {
  dev?: boolean;
}

/**
 * A consumer's lockfile for `homekv` from the tarball. `npm install --offline` cannot resolve
 * version ranges (the npm cache the project's install filled holds tarballs, not registry
 * metadata), so the consumer pins homekv's dependencies to the versions the project's own
 * lockfile names; its development-only entries are left out, as they are for any consumer.
 */
function consumerLockfile(tarball: string, packageJson: { version: string; dependencies: object; bin: object }) {
  const projectLock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const installed = Object.entries(projectLock.packages).filter(([path, entry]) => path !== "" && !entry.dev);
  return {
    name: "consumer",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name: "consumer", dependencies: { homekv: `file:${tarball}` } },
      "node_modules/homekv": { ...packageJson, resolved: `file:${tarball}` },
      ...Object.fromEntries(installed),
    },
  };
}

// What a user gets from the published package: `npm pack`, then a production install of the
// tarball in a folder of its own (no devDependencies), from the npm cache alone.
describe("a production install of the packed package", () => {
  const consumer = scratchDir("homekv-consumer-");
  // The bin runs with `#!/usr/bin/env bun`: a user has bun on PATH; here it is the test's own.
  const env = { PATH: `${join(ROOT, "node_modules", ".bin")}:${dirname(process.execPath)}:${process.env.PATH}` };
  const bin = join(consumer.path, "node_modules", ".bin", "homekv");

  beforeAll(async () => {
    const [packed] = JSON.parse(run(["npm", "pack", "--json", "--pack-destination", consumer.path], ROOT)) as {
      filename: string;
    }[];
    const tarball = packed!.filename;
    const packageJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const manifest = { version: packageJson.version, dependencies: packageJson.dependencies, bin: packageJson.bin };
    writeFileSync(
      join(consumer.path, "package.json"),
      JSON.stringify({ name: "consumer", private: true, dependencies: { homekv: `file:${tarball}` } }),
    );
    writeFileSync(join(consumer.path, "package-lock.json"), JSON.stringify(consumerLockfile(tarball, manifest)));
    run(["npm", "install", "--omit=dev", "--offline", "--no-audit", "--no-fund"], consumer.path);
  }, 180_000);
  afterAll(() => consumer.cleanup());

  test("homekv --help runs from the installed bin", async () => {
    const help = await runHomekv(["--help"], { command: [bin], cwd: consumer.path, env });
    expect(help.stderr).toBe("");
    expect(help).toMatchObject({ exitCode: 0 });
    expect(help.stdout).toContain("homekv");
  });

  test('a program importing { HomeKvClient } from "homekv" calls the installed server', async () => {
    const server = await startServerProcess(["--in-memory"], { command: [bin], cwd: consumer.path, env });
    const program = join(consumer.path, "client.ts");
    writeFileSync(
      program,
      [
        'import { HomeKvClient } from "homekv";',
        "const client = new HomeKvClient({ address: process.argv[2] });",
        'await client.set({ greeting: "hello" });',
        'const { records } = await client.get(["greeting"]);',
        "console.log(new TextDecoder().decode(records[0].value));",
        "client.close();",
      ].join("\n"),
    );
    try {
      const result = await runHomekv([program, server.address], { command: [process.execPath], cwd: consumer.path });
      expect(result).toEqual({ exitCode: 0, stdout: "hello\n", stderr: "" });
    } finally {
      await server.stop();
    }
  });
});
