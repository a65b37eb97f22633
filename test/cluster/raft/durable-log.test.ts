import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { Entry, HardState } from "../../../src/cluster/raft/types.ts";
import { MemoryFileSystem } from "../../../src/storage/fs/memory-fs.ts";

const DIR = "/data/raft";
const FILE = `${DIR}/00000000000000000000.raftlog`;
const entry = (index: number, term: number, text: string | null = `e${index}`): Entry => ({ index, term, data: text === null ? null : new TextEncoder().encode(text) });
const allEntries = (log: { lastIndex(): number; entries(lo: number, hi: number): Entry[] }) => log.entries(1, log.lastIndex() + 1);

describe("DurableRaftLog", () => {
  test("what persist wrote is there after a reopen, and after a crash", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 2, commit: 0 }, [entry(1, 1), entry(2, 1, null)]);
    await log.persist({ term: 2, vote: 0, commit: 2 }, [entry(3, 2)]);
    // A leader of term 3 overwrote entry 3 onwards, with a configuration change among them.
    await log.persist(undefined, [entry(3, 3, "x"), entry(4, 3), { index: 5, term: 3, data: null, conf: { type: "addLearner", node: 4 } }]);
    fs.crash();
    const reopened = await DurableRaftLog.open(fs, DIR);
    expect(reopened.hardState()).toEqual({ term: 2, vote: 0, commit: 2 });
    expect(allEntries(reopened)).toEqual([entry(1, 1), entry(2, 1, null), entry(3, 3, "x"), entry(4, 3), { index: 5, term: 3, data: null, conf: { type: "addLearner", node: 4 } }]);
    expect(reopened.term(3)).toBe(3);
  });

  test("a torn last record is cut off and said so; what came before is kept", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    const whole = fs.bytes(FILE);
    await log.persist(undefined, [entry(2, 1, "y".repeat(100))]);
    const longer = fs.bytes(FILE);
    fs.overwrite(FILE, longer.subarray(0, whole.byteLength + 40));
    const lines: string[] = [];
    const reopened = await DurableRaftLog.open(fs, DIR, (line) => lines.push(line));
    expect(allEntries(reopened)).toEqual([entry(1, 1)]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("cut 40 bytes of a torn last record");
    // And the file itself was cut back, so the next append follows good data.
    await reopened.persist(undefined, [entry(2, 1, "z")]);
    expect(allEntries(await DurableRaftLog.open(fs, DIR))).toEqual([entry(1, 1), entry(2, 1, "z")]);
  });

  test("a flipped byte before the end stops the open, naming the file and the offset", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    await log.persist(undefined, [entry(2, 1)]);
    const bytes = fs.bytes(FILE).slice();
    const headerBytes = 12 + 6 + 1 + 8;
    bytes[headerBytes + 20] = bytes[headerBytes + 20]! ^ 0xff; // inside the first entries record
    fs.overwrite(FILE, bytes);
    await expect(DurableRaftLog.open(fs, DIR)).rejects.toThrow(`${FILE} is damaged at byte offset ${headerBytes}`);
  });

  test("a failed sync leaves nothing visible and nothing half-written behind the next append", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    fs.injectFault({ op: "sync", code: "EIO", times: 1 });
    await expect(log.persist(undefined, [entry(2, 1)])).rejects.toThrow();
    expect(log.lastIndex()).toBe(1);
    await log.persist(undefined, [entry(2, 1, "again")]);
    expect(allEntries(await DurableRaftLog.open(fs, DIR))).toEqual([entry(1, 1), entry(2, 1, "again")]);
  });

  test("property: any sequence of persists reads back, after a reopen, as the in-memory storage has it", async () => {
    const step = fc.record({
      hardState: fc.option(fc.record({ term: fc.nat(50), vote: fc.nat(5), commit: fc.nat(50) }), { nil: undefined }),
      // Entries start anywhere from 1 to one past the end: a conflict overwrites, an append extends.
      from: fc.nat(),
      terms: fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 5 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 20 }), async (steps) => {
        const fs = new MemoryFileSystem();
        const durable = await DurableRaftLog.open(fs, DIR);
        const model = new MemoryStorage();
        for (const { hardState, from, terms } of steps) {
          const start = 1 + (from % (model.lastIndex() + 1));
          const entries = terms.map((term, i) => entry(start + i, term, i % 2 === 0 ? null : `${start + i}/${term}`));
          await durable.persist(hardState as HardState | undefined, entries);
          model.append(entries);
          if (hardState) model.setHardState(hardState);
        }
        fs.crash();
        const reopened = await DurableRaftLog.open(fs, DIR);
        expect(reopened.hardState()).toEqual(model.hardState());
        expect(allEntries(reopened)).toEqual(allEntries(model));
      }),
      { numRuns: 200 },
    );
  });
});
