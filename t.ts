import { openDurableDatabase } from "./src/storage/durable-database.ts";
import { MemoryFileSystem } from "./src/storage/fs/memory-fs.ts";
const enc = new TextEncoder();
for (const fs of [new MemoryFileSystem(), undefined]) {
  const dir = fs ? "/d" : "/tmp/hkv-smoke"; if (!fs) await Bun.$`rm -rf ${dir}`;
  let db = await openDurableDatabase({ dir, fs, log: console.log, walSegmentBytesMax: 4096 });
  await Promise.all(Array.from({length: 200}, (_, i) => db.write([{key: `k${i%50}`, value: enc.encode(`v${i}`)}])));
  console.log(db.stats().revision, db.stats().wal);
  await db.checkpoint();
  await db.write([{key: "after", value: enc.encode("ckpt")}]);
  if (fs) { fs.crash(); } else { /* simulate crash: no close */ }
  db = await openDurableDatabase({ dir, fs, log: console.log, isAlive: () => false });
  console.log(db.stats().revision, db.stats().keys, new TextDecoder().decode(db.read(["after"]).values[0]));
  await db.close();
  db = await openDurableDatabase({ dir, fs, log: console.log });
  console.log(db.stats().revision, db.stats().keys);
  await db.close();
}
