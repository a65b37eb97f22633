import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { mainCommand } from "../../src/cli/main.ts";
import { ROOT } from "../helpers/processes.ts";

/**
 * A client command must not load the server: scripts call `homekv get` in loops and would pay for
 * the server's modules on every call. This walks the static imports (dynamic ones load only when
 * reached) from the entry point and from each client command, as the bundler sees them.
 */
const FORBIDDEN_FOLDERS = ["src/server/", "src/storage/", "src/cluster/"];
const FORBIDDEN_PACKAGES = ["@grpc/reflection", "@grpc/proto-loader", "grpc-health-check", "protobufjs"];
const transpiler = new Bun.Transpiler({ loader: "ts" });

interface ImportGraph {
  /** Source files, relative to the repository. */
  files: Set<string>;
  /** Package names imported by any of them (node: built-ins left out). */
  packages: Set<string>;
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

/** Every file and package that loading `entry` loads at once. */
function staticImports(entry: string): ImportGraph {
  const graph: ImportGraph = { files: new Set(), packages: new Set() };
  const pending = [resolve(ROOT, entry)];
  // Bounded by the files there are: each is scanned once.
  while (pending.length > 0) {
    const file = pending.pop()!;
    const name = relative(ROOT, file);
    if (graph.files.has(name)) continue;
    graph.files.add(name);
    // Data imported as text or JSON (package.json, .proto files) imports nothing.
    if (!/\.[cm]?[jt]s$/.test(file)) continue;
    // The transpiler takes a module's text, not a script's: without main.ts's `#!` line.
    const source = readFileSync(file, "utf8").replace(/^#!.*/, "");
    for (const { path, kind } of transpiler.scanImports(source)) {
      if (kind === "dynamic-import") continue;
      // Bun's resolver, as the bundler: generated code imports `./empty.js` meaning empty.ts.
      if (path.startsWith(".")) pending.push(Bun.resolveSync(path, dirname(file)));
      else if (!path.startsWith("node:") && !path.startsWith("bun")) graph.packages.add(packageName(path));
    }
  }
  return graph;
}

/** What `graph` loads that a client command must not. */
function serverModules(graph: ImportGraph): string[] {
  return [
    ...[...graph.files].filter((file) => FORBIDDEN_FOLDERS.some((folder) => file.startsWith(folder))),
    ...[...graph.packages].filter((name) => FORBIDDEN_PACKAGES.includes(name)),
  ];
}

/** The files main.ts loads its commands from, by command name. */
function commandFiles(): Map<string, string> {
  const main = resolve(ROOT, "src/cli/main.ts");
  const loaded = transpiler
    .scanImports(readFileSync(main, "utf8"))
    .filter(({ kind }) => kind === "dynamic-import")
    .map(({ path }) => relative(ROOT, resolve(dirname(main), path)));
  return new Map(loaded.map((file) => [file.replace(/^src\/cli\/|\.ts$/g, ""), file]));
}

test("main.ts loads every command lazily, from a file named for it", () => {
  expect([...commandFiles().keys()].sort()).toEqual(Object.keys(mainCommand.subCommands as object).sort());
});

/** The commands that work on a data directory themselves rather than through a server. */
const LOCAL_COMMANDS = ["serve", "restore"];

test("the entry point and every client command load no server code and none of its packages", () => {
  const roots = [
    "src/main.ts",
    ...[...commandFiles()].filter(([name]) => !LOCAL_COMMANDS.includes(name)).map(([, file]) => file),
  ];
  expect(roots).toContain("src/cli/get.ts");
  for (const root of roots) expect({ root, loads: serverModules(staticImports(root)) }).toEqual({ root, loads: [] });
});

test("the walk finds server code where there is some: serve loads it", () => {
  const loads = serverModules(staticImports("src/cli/serve.ts"));
  expect(loads).toContain("src/server/server.ts");
  expect(loads).toContain("@grpc/reflection");
});
