import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { scratchDir } from "../helpers/processes.ts";

/**
 * Certificates made for the TLS tests with the machine's openssl: a CA and what it signs, plus a
 * second CA nobody trusts. Each file name is a path in a scratch directory.
 */
export interface TestCerts {
  dir: string;
  ca: string;
  otherCa: string;
  /** Valid for localhost and 127.0.0.1, signed by `ca`. */
  server: { cert: string; key: string };
  /** Signed by `ca`, valid only on 1-2 January 2020. */
  expired: { cert: string; key: string };
  /** Signed by `ca` for other.example only. */
  wrongHost: { cert: string; key: string };
  /** For localhost and 127.0.0.1, signed by `otherCa`. */
  untrusted: { cert: string; key: string };
  /** Client certificates for mutual TLS, by `ca` and by `otherCa`. */
  client: { cert: string; key: string };
  untrustedClient: { cert: string; key: string };
  cleanup(): void;
}

const LOCAL_NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1";

export function makeTestCerts(): TestCerts {
  const scratch = scratchDir("homekv-certs-");
  const dir = scratch.path;
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const result = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    if (result.exitCode !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${result.stderr.toString()}`);
  };
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const makeCa = (name: string) =>
    openssl(
      "req",
      "-x509",
      ...newKey,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
    );
  makeCa("ca");
  makeCa("other-ca");

  // `openssl ca` rather than `x509 -req`: only it takes explicit dates, which the expired certificate needs.
  writeFileSync(path("index.txt"), "");
  writeFileSync(path("serial"), "01\n");
  writeFileSync(
    path("ca.cnf"),
    [
      "[ca]",
      "default_ca = test",
      "[test]",
      "database = index.txt",
      "new_certs_dir = .",
      "serial = serial",
      "default_md = sha256",
      "policy = any",
      "copy_extensions = copy",
      "unique_subject = no",
      "[any]",
      "commonName = supplied",
    ].join("\n"),
  );
  const issue = (name: string, ca: string, names: string, dates: string[] = ["-days", "2"]) => {
    openssl(
      "req",
      ...newKey,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${name}`,
      "-addext",
      names,
    );
    openssl(
      "ca",
      "-batch",
      "-config",
      "ca.cnf",
      "-cert",
      `${ca}.crt`,
      "-keyfile",
      `${ca}.key`,
      "-in",
      `${name}.csr`,
      "-out",
      `${name}.crt`,
      ...dates,
    );
    return { cert: path(`${name}.crt`), key: path(`${name}.key`) };
  };
  return {
    dir,
    ca: path("ca.crt"),
    otherCa: path("other-ca.crt"),
    server: issue("server", "ca", LOCAL_NAMES),
    expired: issue("expired", "ca", LOCAL_NAMES, ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"]),
    wrongHost: issue("wrong-host", "ca", "subjectAltName=DNS:other.example"),
    untrusted: issue("untrusted", "other-ca", LOCAL_NAMES),
    client: issue("client", "ca", "subjectAltName=DNS:client"),
    untrustedClient: issue("untrusted-client", "other-ca", "subjectAltName=DNS:client"),
    cleanup: scratch.cleanup,
  };
}
