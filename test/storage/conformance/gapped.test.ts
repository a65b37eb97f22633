import { describeDatabaseConformance } from "./database-suite.ts";
import { gappedDriver } from "./gapped-driver.ts";

/** Both engines fed revisions with gaps; the FLSM's memtable of 256 bytes freezes every command or two. */
describeDatabaseConformance("revisions with gaps, memory engine", gappedDriver());
describeDatabaseConformance(
  "revisions with gaps, flsm engine",
  gappedDriver({ kind: "flsm", memtableBytes: 256, tuning: { table: { blockBytes: 64, restartInterval: 2 } } }),
);
