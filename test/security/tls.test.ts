import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ClientTls, HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { runHomekv, type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { makeTestCerts, type TestCerts } from "./certs.ts";

let certs: TestCerts;
const servers: ServerProcess[] = [];

beforeAll(() => {
  certs = makeTestCerts();
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
  certs.cleanup();
});

async function serveWith(identity: { cert: string; key: string }, extra: string[] = []): Promise<ServerProcess> {
  const server = await startServerProcess([
    "--in-memory",
    "--tls-cert",
    identity.cert,
    "--tls-key",
    identity.key,
    ...extra,
  ]);
  servers.push(server);
  return server;
}

/** What a client sees on its first call: "ok", or the error's message. */
async function firstCall(address: string, tls: ClientTls | undefined): Promise<string> {
  const client = new HomeKvClient({ address, timeoutMs: 5_000, ...(tls ? { tls } : {}) });
  try {
    await client.set({ checked: "yes" });
    const { records } = await client.get(["checked"]);
    return text(records[0]!.value) === "yes" ? "ok" : "wrong value";
  } catch (error) {
    return (error as Error).message;
  } finally {
    client.close();
  }
}

const pem = (path: string) => readFileSync(path);

describe("TLS", () => {
  test("a client that trusts the CA reads and writes; the CLI too, with --tls-ca", async () => {
    const server = await serveWith(certs.server);
    expect(server.output()).toContain("; TLS, no auth)");
    expect(await firstCall(server.address, { ca: pem(certs.ca) })).toBe("ok");
    const flags = ["-p", String(server.port), "--tls-ca", certs.ca];
    expect((await runHomekv(["set", ...flags, "trail=people"])).exitCode).toBe(0);
    const got = await runHomekv(["get", ...flags, "trail"]);
    expect(got.stdout).toContain('"people"');
    // Connecting by name works too: the certificate names localhost.
    expect(await firstCall(`localhost:${server.port}`, { ca: pem(certs.ca) })).toBe("ok");
  });

  test("a plaintext client is refused with a reason, and a TLS client of a plaintext server too", async () => {
    const tlsServer = await serveWith(certs.server);
    expect(await firstCall(tlsServer.address, undefined)).toContain(
      "closed the connection during setup (does it expect TLS",
    );
    const plain = await startServerProcess(["--in-memory"]);
    servers.push(plain);
    expect(await firstCall(plain.address, { ca: pem(certs.ca) })).toContain("the server does not speak TLS");
  });

  test("an expired certificate is refused", async () => {
    const server = await serveWith(certs.expired);
    expect(await firstCall(server.address, { ca: pem(certs.ca) })).toContain(
      "the server's TLS certificate has expired",
    );
  });

  test("a certificate from a CA the client does not trust is refused", async () => {
    const server = await serveWith(certs.untrusted);
    expect(await firstCall(server.address, { ca: pem(certs.ca) })).toContain("not signed by a CA this client trusts");
    // The CLI says it in one line, exit code 1.
    const cli = await runHomekv(["get", "-p", String(server.port), "--tls-ca", certs.ca, "k"]);
    expect(cli.exitCode).toBe(1);
    expect(cli.stderr.trim().split("\n")).toHaveLength(1);
    expect(cli.stderr).toContain("not signed by a CA this client trusts");
  });

  test("a certificate for another host name is refused, unless the client is told to expect that name", async () => {
    const server = await serveWith(certs.wrongHost);
    expect(await firstCall(server.address, { ca: pem(certs.ca) })).toContain("not valid for this host name");
    expect(await firstCall(server.address, { ca: pem(certs.ca), serverName: "other.example" })).toBe("ok");
  });

  test("mutual TLS: no client certificate, or one from an untrusted CA, is refused; a trusted one gets in", async () => {
    const server = await serveWith(certs.server, ["--tls-client-ca", certs.ca]);
    expect(server.output()).toContain("; mutual TLS, no auth)");
    expect(await firstCall(server.address, { ca: pem(certs.ca) })).toContain("requires a client certificate");
    const untrusted = { ca: pem(certs.ca), cert: pem(certs.untrustedClient.cert), key: pem(certs.untrustedClient.key) };
    expect(await firstCall(server.address, untrusted)).toContain("closed the connection during setup");
    expect(
      await firstCall(server.address, { ca: pem(certs.ca), cert: pem(certs.client.cert), key: pem(certs.client.key) }),
    ).toBe("ok");
    const cli = await runHomekv([
      "get",
      "-p",
      String(server.port),
      "--tls-ca",
      certs.ca,
      "--tls-cert",
      certs.client.cert,
      "--tls-key",
      certs.client.key,
      "checked",
    ]);
    expect(cli.stdout).toContain('"yes"');
  });

  test("the server does not start with a key that is not its certificate's, nor with a missing file", async () => {
    const mismatched = await runHomekv([
      "serve",
      "--in-memory",
      "-p",
      "0",
      "--tls-cert",
      certs.server.cert,
      "--tls-key",
      certs.client.key,
    ]);
    expect(mismatched.exitCode).toBe(1);
    expect(mismatched.stderr).toContain(`--tls-cert ${certs.server.cert} with --tls-key ${certs.client.key}`);
    const missing = await runHomekv([
      "serve",
      "--in-memory",
      "-p",
      "0",
      "--tls-cert",
      "/nonexistent.pem",
      "--tls-key",
      certs.server.key,
    ]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain("cannot read --tls-cert /nonexistent.pem: ENOENT");
    const alone = await runHomekv(["serve", "--in-memory", "-p", "0", "--tls-cert", certs.server.cert]);
    expect(alone.exitCode).toBe(2);
    expect(alone.stderr).toContain("tls-cert and tls-key go together");
  });

  test("homekv bench speaks TLS and sends the token too", async () => {
    const tokens = join(certs.dir, "tokens");
    writeFileSync(tokens, "bench-token write\n");
    const server = await serveWith(certs.server, ["--auth-file", tokens]);
    const flags = [
      "bench",
      "-p",
      String(server.port),
      "--tls-ca",
      certs.ca,
      "--op",
      "set",
      "-n",
      "50",
      "-c",
      "2",
      "--keys",
      "10",
    ];
    const ran = await runHomekv([...flags, "--token", "bench-token", "--json"]);
    expect(ran.exitCode).toBe(0);
    expect(JSON.parse(ran.stdout).requests).toBe(50);
    const refused = await runHomekv(flags);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain("server refused: UNAUTHENTICATED: Get needs a token");
  });

  test("client flags: --tls-cert without --tls-key is a usage error", async () => {
    const result = await runHomekv(["get", "--tls-cert", certs.client.cert, "k"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--tls-cert and --tls-key go together");
  });
});
