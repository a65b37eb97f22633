import { HomeKvError } from "../errors.ts";
import { errorCode, type FileSystem, listIfExists } from "../io/fs/file-system.ts";
import { STORE_ENGINES, type StoreEngineName } from "./engine.ts";

/** Where a data directory held data before engines were recorded: the WAL, checkpoints, a Raft log. */
const MEMORY_ENGINE_DIRS = ["wal", "checkpoints", "raft"];

/**
 * Binds a data directory to the engine that writes it: `dir/ENGINE` holds the engine's name and a
 * line feed, written when the directory is first used. A later start with the other engine is
 * refused, naming both: the engines keep their data in different files, so the other one would
 * start empty, or from a part of the data, without saying so. A directory with data but no ENGINE
 * was written before engines were recorded, when memory was the only one. Call it holding the
 * directory's lock.
 *
 *   dir/ENGINE      "memory\n" or "flsm\n"; written once (to ENGINE.tmp, synced, renamed)
 */
export async function claimDataDirEngine(fs: FileSystem, dir: string, engine: StoreEngineName): Promise<void> {
  const path = `${dir}/ENGINE`;
  const fromFile = await readEngineFile(fs, path);
  const recorded = fromFile ?? ((await holdsData(fs, dir)) ? "memory" : undefined);
  if (recorded !== undefined && recorded !== engine)
    throw new HomeKvError(
      "E_CONFIG",
      `data directory ${dir} was written by the ${recorded} engine, and this server was started with --engine ${engine}: start it with --engine ${recorded}, or give it another --data-dir`,
    );
  if (fromFile !== undefined) return;
  await fs.remove(`${path}.tmp`);
  await fs.createExclusive(`${path}.tmp`, new TextEncoder().encode(`${engine}\n`));
  await fs.rename(`${path}.tmp`, path);
  await fs.syncDir(dir);
}

/** The engine the file names; undefined when there is no file. */
async function readEngineFile(fs: FileSystem, path: string): Promise<StoreEngineName | undefined> {
  let text: string;
  try {
    text = new TextDecoder().decode(await fs.readFile(path)).trim();
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
  const name = STORE_ENGINES.find((known) => known === text);
  if (name === undefined)
    throw new HomeKvError(
      "E_CORRUPT",
      `${path} names no engine HomeKV knows (${JSON.stringify(text.slice(0, 40))}; expected one of ${STORE_ENGINES.join(", ")})`,
    );
  return name;
}

/** Whether the directory holds files of the memory engine's time (an empty folder left aside). */
async function holdsData(fs: FileSystem, dir: string): Promise<boolean> {
  for (const name of MEMORY_ENGINE_DIRS) {
    if ((await listIfExists(fs, `${dir}/${name}`)).length > 0) return true;
  }
  return false;
}
