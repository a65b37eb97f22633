import { beforeAll, describe, expect, test } from "bun:test";
import { bytes } from "../helpers/bytes.ts";
import { runHomekv } from "../helpers/processes.ts";
import { useServer } from "../helpers/server.ts";

const server = useServer();
const run = (args: string[], stdin?: string) =>
  stdin === undefined
    ? runHomekv([...args, "-p", String(server.port)])
    : runWithStdin([...args, "-p", String(server.port)], stdin);

async function runWithStdin(args: string[], stdin: string) {
  const proc = Bun.spawn([process.execPath, "src/main.ts", ...args], {
    stdin: bytes(stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}

beforeAll(async () => {
  await run(["set", "user/1=ann", "user/2=bob", "user/3=cy", "zoo=z"]);
});

describe("homekv scan", () => {
  test("--prefix lists keys in order with values; --keys-only, --reverse, --limit", async () => {
    expect((await run(["scan", "--prefix", "user/"])).stdout).toBe('user/1  "ann"\nuser/2  "bob"\nuser/3  "cy"\n');
    expect((await run(["scan", "--prefix", "user/", "--keys-only", "--reverse", "--limit", "2"])).stdout).toBe(
      "user/3\nuser/2\n",
    );
  });

  test("--from/--to is [from, to); pages are followed to the end", async () => {
    expect((await run(["scan", "--from", "user/2", "--to", "zzz", "--keys-only", "--page-size", "1"])).stdout).toBe(
      "user/2\nuser/3\nzoo\n",
    );
  });

  test("--json prints one object per line", async () => {
    const lines = (await run(["scan", "--prefix", "user/", "--json"])).stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.key, l.value])).toEqual([
      ["user/1", "ann"],
      ["user/2", "bob"],
      ["user/3", "cy"],
    ]);
  });

  test("bad flags are one line", async () => {
    const both = await run(["scan", "--prefix", "a", "--from", "b"]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toContain("either --prefix or --from/--to");
    expect((await run(["scan", "--limit", "0"])).stderr).toContain("--limit must be a whole number");
    const inverted = await run(["scan", "--from", "b", "--to", "a"]);
    expect(inverted.exitCode).toBe(1);
    expect(inverted.stderr).toContain("inverted");
  });
});

describe("compare-and-set and transactions", () => {
  test("set --if-absent writes once, then refuses with the key's revision", async () => {
    expect((await run(["set", "--if-absent", "lock=me"])).exitCode).toBe(0);
    const again = await run(["set", "--if-absent", "lock=you"]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/not written: expected every key to be absent, but lock is at revision \d+/);
  });

  test("set --if-revision N succeeds only at N", async () => {
    const { revision } = JSON.parse((await run(["set", "--json", "cas=1"])).stdout);
    expect((await run(["set", "--if-revision", String(revision + 5), "cas=2"])).exitCode).toBe(1);
    expect((await run(["set", "--if-revision", String(revision), "cas=2"])).exitCode).toBe(0);
    expect((await run(["get", "cas"])).stdout).toContain('"2"');
  });

  test("homekv txn reads the documented syntax from stdin", async () => {
    const result = await run(
      ["txn"],
      `# move the lock\nif value(lock) == "me"\nif missing(nobody)\nthen\nput lock "you"\nget lock\nelse\nget lock\n`,
    );
    expect(result.stdout).toMatch(/^SUCCEEDED \(then branch\), revision \d+\nlock {2}"you"\n$/);
    const failed = await run(["txn", "--json"], `if value(lock) == "me"\nthen\ndel lock\nelse\nget lock\n`);
    expect(JSON.parse(failed.stdout)).toMatchObject({ succeeded: false, records: [{ key: "lock", value: "you" }] });
  });

  test("a txn compare number past 2^53 is a usage error naming the line, never sent", async () => {
    const result = await run(["txn"], "if mod_revision(k) == 99999999999999999999\nthen\nset k=v\n");
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("txn line 1: mod_revision compares a whole number up to 9007199254740991");
  });

  test("a txn syntax error names the line", async () => {
    const result = await run(["txn"], `if frob(x) == 1\nthen\n`);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('txn line 1: unknown compare target "frob"');
  });
});

describe("revisions from the CLI", () => {
  test("get --rev reads an older revision; compact makes it unreadable", async () => {
    const { revision } = JSON.parse((await run(["set", "--json", "hist=old"])).stdout);
    await run(["set", "hist=new"]);
    expect((await run(["get", "--rev", String(revision), "hist"])).stdout).toContain('"old"');
    expect((await run(["compact", String(revision + 1)])).stdout).toMatch(/compacted below revision \d+/);
    const gone = await run(["get", "--rev", String(revision), "hist"]);
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain("OUT_OF_RANGE");
  });
});
