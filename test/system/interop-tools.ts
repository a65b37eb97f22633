import { installDebianPackages } from "../../scripts/bench/servers.ts";

/**
 * The independent HTTP/2 stacks the native server is tried against (curl, nghttp2's h2load,
 * Python's grpcio), installed from Debian when missing (as the benchmarks install theirs). A tool
 * that is absent and cannot be installed (not root, no network) makes its tests skip, with the
 * reason printed: this file says why, once, at load time.
 */

/** Debian's python, which sees Debian's python3-grpcio (a python on PATH may be another one). */
export const DEBIAN_PYTHON = "/usr/bin/python3";

/** Undefined when `present()` holds, after installing `packages` if needed; otherwise why not. */
export function missingTool(name: string, present: () => boolean, packages: readonly string[]): string | undefined {
  if (present()) return undefined;
  try {
    installDebianPackages(packages, `missing: ${name}`);
  } catch (error) {
    return skipReason(name, error instanceof Error ? error.message : String(error));
  }
  return present() ? undefined : skipReason(name, `still missing after apt-get install ${packages.join(" ")}`);
}

function skipReason(name: string, why: string): string {
  const reason = `${name} is not available (${why}): its interop tests are skipped`;
  console.log(reason);
  return reason;
}

export const hasCommand = (command: string) => () => Bun.which(command) !== null;

export const pythonHasGrpc = () =>
  Bun.spawnSync([DEBIAN_PYTHON, "-c", "import grpc"], { stdout: "ignore", stderr: "ignore", timeout: 20_000 })
    .exitCode === 0;
