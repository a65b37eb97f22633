import { expect, test } from "bun:test";
import { createFlsmStore } from "../../../src/storage/flsm/flsm-store.ts";
import { prefixEnd } from "../../../src/storage/mvcc/key-order.ts";
import { createMvccStore, type MvccStore } from "../../../src/storage/mvcc/store.ts";
import { bytes } from "../../helpers/bytes.ts";
import { MemoryLevels } from "./memory-levels.ts";

/**
 * A prefix's range end (key-order.ts prefixEnd) is worked out in code point order and may end in a
 * lone high surrogate: the end of "p\uffff" is "p\ud800" (after every U+FFFF, before U+10000), the
 * end of "p\u{1f7ff}" is "p\ud83e". Such a bound has no UTF-8 of its own: encoded as U+FFFD
 * (EF BF BD) it falls before the prefix itself, and the FLSM engine's scan of the prefix is empty.
 */
const PREFIXES = ["p\uffff", "p\u{1f7ff}", "\uffff", "q\u{103ff}"];
const KEYS = [
  "p",
  "p\ufffd",
  "p\uffff",
  "p\uffffz",
  "p\u{10000}",
  "p\u{1f7ff}",
  "p\u{1f7ff}a",
  "p\u{1f800}",
  "\uffff",
  "\uffff\uffff",
  "\u{10000}",
  "q\u{103ff}",
  "q\u{103ff}\u{103ff}",
  "q\u{10400}",
];

function load(store: MvccStore): void {
  for (const [i, key] of KEYS.entries()) store.apply({ revision: i + 1, ops: [{ key, value: bytes(key) }] });
}

function flsmStores(): [string, MvccStore][] {
  const inMemtable = createFlsmStore({ historyRevisions: Infinity });
  const levels = new MemoryLevels();
  const flushed = createFlsmStore({ historyRevisions: Infinity, memtableBytes: 1, levels, flush: levels.flush });
  return [
    ["memtable", inMemtable],
    ["frozen memtables", flushed],
  ];
}

test("a scan of a prefix whose end is a lone surrogate finds the prefix's keys on the FLSM engine as on the memory engine", () => {
  const model = createMvccStore({ historyRevisions: Infinity });
  load(model);
  for (const [name, store] of flsmStores()) {
    load(store);
    for (const prefix of PREFIXES) {
      const range = { start: prefix, end: prefixEnd(prefix), limit: 100, revision: model.revision };
      const expected = model.scan(range).records.map((record) => record.key);
      expect(expected.length).toBeGreaterThan(0);
      for (const reverse of [false, true]) {
        const keys = store.scan({ ...range, reverse }).records.map((record) => record.key);
        expect({ name, prefix, reverse, keys }).toEqual({
          name,
          prefix,
          reverse,
          keys: reverse ? [...expected].reverse() : expected,
        });
      }
      const changes = store.changes({ start: prefix, end: prefixEnd(prefix), after: 0, limit: 100 });
      expect({ name, prefix, changes: changes.changes.map((c) => c.key) }).toEqual({ name, prefix, changes: expected });
    }
  }
});
