import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient, HomeKvRpcError } from "../../src/client/client.ts";
import { HomeKvError } from "../../src/errors.ts";
import { checkCall, parseAuthFile, parseInlineTokens, roleOf } from "../../src/server/auth.ts";
import { healthCheck } from "../discovery/reflection-client.ts";
import { text } from "../helpers/bytes.ts";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";

const SERVICE = "/homekv_service.HomeKvService/";

describe("auth file", () => {
  test("TOKEN ROLE lines, comments, blank lines; sha256: entries are digests", () => {
    const digest = createHash("sha256").update("hashed-secret").digest("hex");
    const tokens = parseAuthFile(
      `# operators\nreader-1 read\n\nwriter-1   write # the app\nsha256:${digest} admin\n`,
      "auth.txt",
    );
    expect(roleOf(tokens, "reader-1")).toBe("read");
    expect(roleOf(tokens, "writer-1")).toBe("write");
    expect(roleOf(tokens, "hashed-secret")).toBe("admin");
    expect(roleOf(tokens, `sha256:${digest}`)).toBeUndefined();
    expect(roleOf(tokens, "reader-")).toBeUndefined();
  });

  test("each mistake names its line", () => {
    const mistakes: [string, string][] = [
      ["a read\nb superuser\n", 'auth.txt:2: role must be one of read, write, admin, not "superuser"'],
      ["a read extra\n", 'auth.txt:1: expected "TOKEN ROLE", found 3 field(s)'],
      ["lonely\n", 'auth.txt:1: expected "TOKEN ROLE", found 1 field(s)'],
      ["a read\na write\n", "auth.txt:2: this token is already listed above"],
      ["# nothing\n", "auth.txt lists no token: every call would be refused"],
    ];
    for (const [text, message] of mistakes) {
      expect(() => parseAuthFile(text, "auth.txt")).toThrow(new HomeKvError("E_CONFIG", message));
    }
  });

  test("inline tokens: TOKEN:ROLE pairs", () => {
    const tokens = parseInlineTokens("a:b:read, c:admin", "HOMEKV_AUTH_TOKENS");
    expect(roleOf(tokens, "a:b")).toBe("read");
    expect(roleOf(tokens, "c")).toBe("admin");
  });

  test("what each role may call", () => {
    const tokens = parseAuthFile("r read\nw write\na admin\n", "auth.txt");
    const outcome = (method: string, token: string) =>
      checkCall(tokens, SERVICE + method, `Bearer ${token}`)?.code ?? "ok";
    for (const method of ["Get", "Scan", "Watch", "Metrics", "Members", "Ring", "ClusterStatus"])
      expect([outcome(method, "r"), outcome(method, "w"), outcome(method, "a")]).toEqual(["ok", "ok", "ok"]);
    for (const method of ["Set", "Del", "Txn", "Compact"])
      expect([outcome(method, "r"), outcome(method, "w"), outcome(method, "a")]).toEqual([
        Status.PERMISSION_DENIED,
        "ok",
        "ok",
      ]);
    for (const method of ["Checkpoint", "Backup", "ClusterAdd", "ClusterRemove", "ClusterTransferLeader"])
      expect([outcome(method, "r"), outcome(method, "w"), outcome(method, "a")]).toEqual([
        Status.PERMISSION_DENIED,
        Status.PERMISSION_DENIED,
        "ok",
      ]);
    // A method not placed in a role yet needs admin: closed by default.
    expect(outcome("SomethingNew", "w")).toBe(Status.PERMISSION_DENIED);
    expect(checkCall(tokens, "/grpc.health.v1.Health/Check", undefined)).toBeUndefined();
    expect(checkCall(tokens, `${SERVICE}Get`, undefined)?.code).toBe(Status.UNAUTHENTICATED);
    expect(checkCall(tokens, `${SERVICE}Get`, "Basic cjpy")?.code).toBe(Status.UNAUTHENTICATED);
    expect(checkCall(tokens, `${SERVICE}Get`, "Bearer nope")?.code).toBe(Status.UNAUTHENTICATED);
  });
});

describe("a server with --auth-file", () => {
  const scratch = scratchDir("homekv-auth-");
  const authFile = join(scratch.path, "tokens");
  let server: ServerProcess;
  const clients: HomeKvClient[] = [];
  const client = (token?: string) => {
    const made = new HomeKvClient({ address: server.address, ...(token === undefined ? {} : { token }) });
    clients.push(made);
    return made;
  };
  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => "ok",
      (error) => (error instanceof HomeKvRpcError ? `${Status[error.code]}: ${error.details}` : String(error)),
    );

  beforeAll(async () => {
    writeFileSync(authFile, "reader-token read\nwriter-token write\nadmin-token admin\n");
    server = await startServerProcess(["--auth-file", authFile, "--log-level", "debug"]);
  });
  afterAll(async () => {
    for (const made of clients) made.close();
    await server.stop();
    scratch.cleanup();
  });

  test("no token, a wrong token or a malformed header: UNAUTHENTICATED, saying what to send", async () => {
    expect(await refusal(client().get(["k"]))).toBe(
      'UNAUTHENTICATED: Get needs a token: send "authorization: Bearer TOKEN" (CLI: --token or HOMEKV_TOKEN)',
    );
    expect(await refusal(client("guess").set({ k: "v" }))).toBe(
      "UNAUTHENTICATED: the token is not valid on this server",
    );
  });

  test("each role does what it may and is refused the rest with PERMISSION_DENIED", async () => {
    expect(await refusal(client("writer-token").set({ k: "v" }))).toBe("ok");
    expect(await refusal(client("reader-token").get(["k"]))).toBe("ok");
    expect(await refusal(client("reader-token").set({ k: "w" }))).toBe(
      "PERMISSION_DENIED: Set needs the write role; this token has read",
    );
    expect(await refusal(client("writer-token").checkpoint())).toBe(
      "PERMISSION_DENIED: Checkpoint needs the admin role; this token has write",
    );
    expect(await refusal(client("admin-token").checkpoint())).toBe("ok");
    // A backup writes where the server's process may write: admin only, and nothing is written otherwise.
    const backup = join(scratch.path, "backup");
    expect(await refusal(client().backup(backup))).toBe(
      'UNAUTHENTICATED: Backup needs a token: send "authorization: Bearer TOKEN" (CLI: --token or HOMEKV_TOKEN)',
    );
    expect(await refusal(client("writer-token").backup(backup))).toBe(
      "PERMISSION_DENIED: Backup needs the admin role; this token has write",
    );
    expect(existsSync(backup)).toBe(false);
    expect(await refusal(client("admin-token").backup(backup))).toBe("ok");
    expect(existsSync(join(backup, "ENGINE"))).toBe(true);
    const { records } = await client("reader-token").get(["k"]);
    expect(text(records[0]!.value)).toBe("v");
  });

  test("the CLI sends --token or HOMEKV_TOKEN, and a refusal is one line on stderr", async () => {
    const port = ["-p", String(server.port)];
    expect((await runHomekv(["set", ...port, "--token", "writer-token", "cli=1"])).exitCode).toBe(0);
    const viaEnv = await runHomekv(["get", ...port, "cli"], { env: { HOMEKV_TOKEN: "reader-token" } });
    expect(viaEnv.stdout).toContain('"1"');
    const denied = await runHomekv(["del", ...port, "cli"], { env: { HOMEKV_TOKEN: "reader-token" } });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr.trim()).toBe(
      "[error] server refused: PERMISSION_DENIED: Del needs the write role; this token has read",
    );
  });

  test("health stays open to probes without a token; refusals are counted; no token reaches the log", async () => {
    expect(await healthCheck(server.address, "")).toEqual({ status: "SERVING" });
    const metrics = await client("reader-token").metrics();
    expect(metrics.cmdsRejected).toBeGreaterThan(0);
    expect(server.output()).toContain("3 token(s)");
    for (const token of ["reader-token", "writer-token", "admin-token", "guess"])
      expect(server.output()).not.toContain(token);
  });
});
