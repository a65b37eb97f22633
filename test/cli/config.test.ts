import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatSettings, resolveSettings, type SettingSpec } from "../../src/cli/settings.ts";
import { UsageError } from "../../src/cli/usage-error.ts";
import { HomeKvClient } from "../../src/client/client.ts";
import { runHomekv, scratchDir, startServerProcess } from "../helpers/processes.ts";

const TABLE = {
  port: { kind: { type: "integer", min: 0, max: 65_535 }, default: 20001, description: "" },
  "log-format": { kind: { type: "choice", choices: ["human", "json"] }, default: "human", description: "" },
  "in-memory": { kind: { type: "boolean" }, default: false, description: "" },
  "history-duration": { kind: { type: "duration" }, description: "" },
  "auth-tokens": { kind: { type: "string" }, secret: true, description: "" },
} satisfies Record<string, SettingSpec>;

const file = (text: string) => ({ path: "homekv.toml", text });

describe("settings: flags > environment > file > defaults", () => {
  test("each source in its place", () => {
    const toml = 'port = 1000\nlog-format = "json"\nin-memory = true\nhistory-duration = "5m"\n';
    const { values, sources } = resolveSettings(TABLE, {
      flags: { port: "3000" },
      env: { HOMEKV_PORT: "2000", HOMEKV_LOG_FORMAT: "human" },
      file: file(toml),
    });
    expect(values).toEqual({
      port: 3000,
      "log-format": "human",
      "in-memory": true,
      "history-duration": 300_000,
      "auth-tokens": undefined,
    });
    expect(sources).toEqual({
      port: "--port",
      "log-format": "HOMEKV_LOG_FORMAT",
      "in-memory": "homekv.toml:3",
      "history-duration": "homekv.toml:4",
      "auth-tokens": "unset",
    });
    const defaults = resolveSettings(TABLE, { flags: {}, env: {} });
    expect(defaults.values.port).toBe(20001);
    expect(defaults.sources.port).toBe("default");
  });

  test("an explicit false flag beats a true in the file; booleans from the environment", () => {
    expect(
      resolveSettings(TABLE, { flags: { "in-memory": false }, env: {}, file: file("in-memory = true") }).values[
        "in-memory"
      ],
    ).toBe(false);
    expect(resolveSettings(TABLE, { flags: {}, env: { HOMEKV_IN_MEMORY: "yes" } }).values["in-memory"]).toBe(true);
  });

  test("mistakes name the setting, its source and, in the file, its line", () => {
    const cases: [Parameters<typeof resolveSettings>[1], string][] = [
      [
        { flags: {}, env: {}, file: file("port = 1\n\nprot = 2\n") },
        'homekv.toml:3: unknown setting "prot" (homekv serve --help lists them)',
      ],
      [
        { flags: {}, env: {}, file: file('# ports\nport = "20001"\n') },
        "homekv.toml:2: port must be an integer, not a string",
      ],
      [{ flags: {}, env: {}, file: file("port = 1.5\n") }, "homekv.toml:1: port must be an integer, not a float"],
      [
        { flags: {}, env: {}, file: file("\n\nport = 70000\n") },
        'homekv.toml:3: port must be a whole number from 0 to 65535, not "70000"',
      ],
      [
        { flags: {}, env: {}, file: file('in-memory = "true"\n') },
        "homekv.toml:1: in-memory must be a boolean, not a string",
      ],
      [
        { flags: {}, env: {}, file: file('log-format = "xml"\n') },
        'homekv.toml:1: log-format must be one of human, json, not "xml"',
      ],
      [
        { flags: {}, env: {}, file: file("[server]\nport = 1\n") },
        'homekv.toml:1: unknown setting "server" (homekv serve --help lists them)',
      ],
      [{ flags: {}, env: {}, file: file("port = \n") }, "homekv.toml:1: "],
      [{ flags: {}, env: { HOMEKV_IN_MEMORY: "maybe" } }, 'HOMEKV_IN_MEMORY must be true or false, not "maybe"'],
      [{ flags: { port: "" }, env: {} }, "--port needs a value"],
      [
        { flags: { "history-duration": "soon" }, env: {} },
        '--history-duration must be a duration like 500ms, 10s or 5m, not "soon"',
      ],
    ];
    for (const [inputs, message] of cases) {
      let thrown: unknown;
      try {
        resolveSettings(TABLE, inputs);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(UsageError);
      expect((thrown as Error).message.startsWith(message)).toBe(true);
    }
  });

  test("printed as TOML with sources; secrets masked; unset settings commented out", () => {
    const resolved = resolveSettings(TABLE, {
      flags: {},
      env: { HOMEKV_AUTH_TOKENS: "s3cret:admin" },
      file: file('history-duration = "90s"'),
    });
    const printed = formatSettings(TABLE, resolved);
    expect(printed).toContain('auth-tokens = "********"  # HOMEKV_AUTH_TOKENS');
    expect(printed).toContain('history-duration = "90000ms"  # homekv.toml:1');
    expect(printed).toContain("port = 20001  # default");
    expect(printed).not.toContain("s3cret");
  });
});

describe("homekv serve with a config file and HOMEKV_* variables", () => {
  test("--print-config shows the resolved settings and exits", async () => {
    const scratch = scratchDir();
    try {
      const path = join(scratch.path, "homekv.toml");
      writeFileSync(path, 'port = 21000\nfsync = "everysec"\nmax-key-bytes = 100\n');
      const result = await runHomekv(["serve", "--config", path, "--print-config", "--fsync", "never"], {
        env: { HOMEKV_AUTH_TOKENS: "tok:read", HOMEKV_MAX_KEY_BYTES: "200" },
      });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain(`port = 21000  # ${path}:1`);
      expect(result.stdout).toContain('fsync = "never"  # --fsync');
      expect(result.stdout).toContain("max-key-bytes = 200  # HOMEKV_MAX_KEY_BYTES");
      expect(result.stdout).toContain('auth-tokens = "********"  # HOMEKV_AUTH_TOKENS');
      expect(result.stdout).not.toContain("tok:read");
      const wrong = await runHomekv(["serve", "--config", join(scratch.path, "missing.toml")]);
      expect(wrong.exitCode).toBe(2);
      expect(wrong.stderr).toContain("cannot read the config file");
    } finally {
      scratch.cleanup();
    }
  });

  test("a server takes its settings from the file and the environment", async () => {
    const scratch = scratchDir();
    const path = join(scratch.path, "homekv.toml");
    writeFileSync(path, 'in-memory = true\nlog-format = "json"\nmax-value-bytes = 4\n');
    // Run from the scratch directory, so that no --data-dir flag outranks the file's in-memory.
    const server = await startServerProcess(["--config", path], {
      cwd: scratch.path,
      env: { HOMEKV_AUTH_TOKENS: "env-token:write" },
    });
    const client = new HomeKvClient({ address: server.address, token: "env-token" });
    try {
      const start = server
        .output()
        .split("\n")
        .find((line) => line.includes("listening on"))!;
      expect(JSON.parse(start).message).toContain("(in memory only; plaintext, 1 token(s))");
      await client.set({ k: "1234" });
      // Not `expect(promise).rejects`: bun's matcher stalls the grpc-js call until its deadline.
      const refused = await client.set({ k: "12345" }).then(
        () => "accepted",
        (error: Error) => error.message,
      );
      expect(refused).toContain("(--max-value-bytes)");
    } finally {
      client.close();
      await server.stop();
      scratch.cleanup();
    }
  });
});
