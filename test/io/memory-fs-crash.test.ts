import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { bytes, text } from "../helpers/bytes.ts";

test("in memory, the image taken after a crash is the next boot's disk: the crashed process's later writes never reach it", async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("/d");
  const before = await fs.openAppend("/d/log");
  await before.append(bytes("synced;"));
  await before.sync();
  await before.append(bytes("lost;"));
  await fs.link("/d/log", "/d/linked");
  fs.crash();
  const next = fs.image();
  // A write the crashed process had scheduled for its next turn.
  await before.append(bytes("stale;"));
  await before.sync();
  const after = await next.openAppend("/d/log");
  await after.append(bytes("next;"));
  await after.sync();
  expect(text(next.bytes("/d/log"))).toBe("synced;next;");
  expect(text(next.bytes("/d/linked"))).toBe("synced;next;"); // a hard link still names the same file
  expect(await next.list("/d")).toEqual(["log", "linked"]);
  next.crash();
  expect(text(next.bytes("/d/log"))).toBe("synced;next;");
});
