import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/errors.ts";
import { NONE, VersionChains } from "../../src/storage/mvcc/version-chain.ts";
import { bytes, text } from "../helpers/bytes.ts";

/** One key's chain, driven as the store drives it. */
function chainOf(key = "k") {
  const chains = new VersionChains();
  let id = NONE;
  return {
    chains,
    append: (revision: number, value: Uint8Array | null) => {
      id = chains.append(key, id, revision, value);
    },
    readAt: (revision: number) => {
      const slot = id === NONE ? NONE : chains.versionAt(id, revision);
      return slot === NONE ? undefined : text(chains.value(slot));
    },
    compact: (floor: number) => {
      const dropped = chains.compact(id, floor);
      if (chains.index.find(key) === NONE) id = NONE;
      return dropped;
    },
    mayHoldGarbage: () => id !== NONE && chains.mayHoldGarbage(id),
    /** The chain in the doc comment's notation: "3:a", "7:∅". */
    show: () =>
      id === NONE
        ? []
        : chains
            .versions(id)
            .map((slot) => `${chains.revision(slot)}:${chains.isTombstone(slot) ? "∅" : text(chains.value(slot))}`),
  };
}

describe("the worked example of version-chain.ts", () => {
  test("put a@3, put b@5, del@7, reads, compact at 5, compact at 7", () => {
    const chain = chainOf();
    chain.append(3, bytes("a"));
    expect(chain.show()).toEqual(["3:a"]);
    chain.append(5, bytes("b"));
    expect(chain.show()).toEqual(["3:a", "5:b"]);
    chain.append(7, null);
    expect(chain.show()).toEqual(["3:a", "5:b", "7:∅"]);

    expect(chain.readAt(4)).toBe("a");
    expect(chain.readAt(6)).toBe("b");
    expect(chain.readAt(7)).toBeUndefined();
    expect(chain.readAt(2)).toBeUndefined();

    expect(chain.compact(5)).toBe(1);
    expect(chain.show()).toEqual(["5:b", "7:∅"]);
    // Everything readable at or after the floor is unchanged.
    expect(chain.readAt(5)).toBe("b");
    expect(chain.readAt(6)).toBe("b");
    expect(chain.readAt(7)).toBeUndefined();
    expect(chain.mayHoldGarbage()).toBe(true);

    expect(chain.compact(7)).toBe(2);
    expect(chain.show()).toEqual([]);
    expect(chain.chains.index.size).toBe(0); // the key left the index
    expect(chain.mayHoldGarbage()).toBe(false);
  });
});

describe("compact", () => {
  test("keeps the version visible at the floor when it is a value", () => {
    const chain = chainOf();
    chain.append(3, bytes("a"));
    chain.append(5, bytes("b"));
    expect(chain.compact(2)).toBe(0); // nothing at or below the floor yet
    expect(chain.compact(9)).toBe(1);
    expect(chain.show()).toEqual(["5:b"]);
    expect(chain.mayHoldGarbage()).toBe(false);
  });

  test("a tombstone under newer versions goes with everything older, the newer stay", () => {
    const chain = chainOf();
    chain.append(1, bytes("a"));
    chain.append(2, null);
    chain.append(4, bytes("c"));
    expect(chain.compact(3)).toBe(2);
    expect(chain.show()).toEqual(["4:c"]);
    expect(chain.readAt(4)).toBe("c");
  });
});

describe("append", () => {
  test("rejects a revision that does not increase", () => {
    const chain = chainOf();
    chain.append(5, bytes("a"));
    expect(() => chain.append(5, bytes("b"))).toThrow(AssertionError);
    expect(() => chain.append(4, bytes("b"))).toThrow(AssertionError);
    expect(chain.show()).toEqual(["5:a"]);
  });

  test("rejects two tombstones in a row", () => {
    const chain = chainOf();
    chain.append(1, bytes("a"));
    chain.append(2, null);
    expect(() => chain.append(3, null)).toThrow(AssertionError);
    expect(chain.show()).toEqual(["1:a", "2:∅"]);
    chain.append(3, bytes("")); // an empty value is not a tombstone
    expect(chain.show()).toEqual(["1:a", "2:∅", "3:"]);
  });

  test("counters: createRevision and version follow the key's life", () => {
    const chains = new VersionChains();
    let id = chains.append("k", NONE, 1, bytes("a"));
    id = chains.append("k", id, 2, bytes("b"));
    expect(chains.version(chains.newest(id))).toMatchObject({ revision: 2, createRevision: 1, version: 2 });
    id = chains.append("k", id, 3, null);
    id = chains.append("k", id, 4, bytes("c"));
    expect(chains.version(chains.newest(id))).toMatchObject({ revision: 4, createRevision: 4, version: 1 });
  });
});

describe("the long-history example of version-chain.ts", () => {
  test("40 puts, compact at 3 (rings the chain), compact at 5, reads at 17 and 40", () => {
    const chains = new VersionChains();
    let id = NONE;
    for (let revision = 1; revision <= 40; revision++) id = chains.append("hot", id, revision, bytes(`v${revision}`));
    const revisions = () => chains.versions(id).map((slot) => chains.revision(slot));
    const visits = (run: () => unknown) => {
      const before = chains.versionsVisited;
      run();
      return chains.versionsVisited - before;
    };

    // The first compaction walks down from the newest past 37 versions, then rings the 38 left.
    expect(chains.compact(id, 3)).toBe(2);
    expect(revisions()).toEqual(Array.from({ length: 38 }, (_, i) => i + 3));

    // The next one starts at the oldest end: it visits what it drops, and the one after.
    expect(visits(() => expect(chains.compact(id, 5)).toBe(2))).toBeLessThanOrEqual(6);
    expect(revisions()[0]).toBe(5);

    let slot = NONE;
    expect(visits(() => (slot = chains.versionAt(id, 17)))).toBeLessThanOrEqual(1 + 6);
    expect(text(chains.value(slot))).toBe("v17");
    expect(visits(() => (slot = chains.versionAt(id, 40)))).toBe(1);
    expect(text(chains.value(slot))).toBe("v40");
    expect(chains.versionAt(id, 4)).toBe(NONE); // compacted away: nothing is visible there any more
  });
});
