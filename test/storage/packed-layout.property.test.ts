import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  compareStored,
  compareStoredAscii,
  decodeStored,
  equalsStored,
  isAscii,
  storedLength,
  writeStored,
} from "../../src/storage/mvcc/packed/key-bytes.ts";
import { KeyIndex } from "../../src/storage/mvcc/packed/key-index.ts";
import { ValueSlabs } from "../../src/storage/mvcc/packed/value-slabs.ts";
import { VersionRing } from "../../src/storage/mvcc/packed/version-ring.ts";
import { createMvccStore } from "../../src/storage/mvcc/store.ts";
import { NONE, VersionChains } from "../../src/storage/mvcc/version-chain.ts";
import type { WriteOp } from "../../src/storage/ops.ts";

/**
 * The packed layout's parts against plain models, made tiny (leaves of two to five keys, 64-byte
 * slabs, four version rows a chunk) so that a few hundred steps reach every edge: hash collisions
 * and backward shifts, leaves that split and join, slab sealing, evacuation, values with a slab of
 * their own.
 */

// Short keys from a small alphabet: one-byte units (U+00FF the last), two-byte ones, units above
// U+D800 (index keys keep native order).
const key = fc.string({
  unit: fc.constantFrom("a", "b", "c", "\u00ff", "\u20ac", "\u{e000}", "\u{d800}"),
  maxLength: 4,
});

test("KeyIndex agrees with a map and a sorted list: find, insert, remove, forward, backward", () => {
  type Step =
    | { kind: "insert"; key: string }
    | { kind: "remove"; pick: number }
    | { kind: "forward"; from: string | undefined }
    | { kind: "backward"; below: string | undefined }
    | { kind: "evacuate" };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("insert" as const), key }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("forward" as const), from: fc.option(key, { nil: undefined }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant("backward" as const), below: fc.option(key, { nil: undefined }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("evacuate" as const) }) },
  );
  fc.assert(
    // Columns in chunks of four entries, a hash table of eight slots: it grows, and probes collide, at once;
    // 64-byte key slabs: a few keys each, sealed and evacuated all the time.
    fc.property(fc.integer({ min: 2, max: 5 }), fc.array(step, { maxLength: 200 }), (leafMax, steps) => {
      const index = new KeyIndex(leafMax, 2, 64);
      const model = new Map<string, number>(); // key → head
      let nextHead = 0;
      for (const s of steps) {
        if (s.kind === "insert") {
          if (model.has(s.key)) continue;
          const head = nextHead++;
          index.insert(s.key, head);
          model.set(s.key, head);
        } else if (s.kind === "remove") {
          const keys = [...model.keys()];
          if (keys.length === 0) continue;
          const victim = keys[s.pick % keys.length]!;
          index.remove(index.find(victim));
          model.delete(victim);
        } else if (s.kind === "evacuate") {
          while (index.evacuateSlab()) {}
        } else {
          const sorted = [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          if (s.kind === "forward") {
            const expected = sorted.filter((k) => s.from === undefined || k >= s.from);
            expect([...index.forward(s.from)].map((id) => index.key(id))).toEqual(expected);
          } else {
            const expected = sorted.filter((k) => s.below === undefined || k < s.below).reverse();
            expect([...index.backward(s.below)].map((id) => index.key(id))).toEqual(expected);
          }
        }
        expect(index.size).toBe(model.size);
      }
      for (const [k, head] of model) expect(index.head(index.find(k))).toBe(head);
      for (const s of steps) if (s.kind === "insert" && !model.has(s.key)) expect(index.find(s.key)).toBe(-1);
    }),
    { numRuns: 300 },
  );
});

test("ValueSlabs: every live value reads back whatever is freed and evacuated, and memory stays within about twice the live bytes", () => {
  type Step = { kind: "put"; size: number } | { kind: "free"; pick: number } | { kind: "evacuate" };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("put" as const), size: fc.integer({ min: 0, max: 40 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("free" as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("evacuate" as const) }) },
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), (steps) => {
      const locs = new Map<number, number>(); // owner → loc
      const contents = new Map<number, Uint8Array>(); // owner → what was put
      const views: [Uint8Array, Uint8Array][] = []; // views handed out earlier, with what they showed
      const slabs = new ValueSlabs(
        { isLive: (owner, loc) => locs.get(owner) === loc, moved: (owner, loc) => locs.set(owner, loc) },
        64,
      );
      let nextOwner = 0;
      for (const s of steps) {
        if (s.kind === "put") {
          const owner = nextOwner++;
          const value = Uint8Array.from({ length: s.size }, (_, i) => (owner * 31 + i) & 0xff);
          locs.set(owner, slabs.put(value, owner));
          contents.set(owner, value);
        } else if (s.kind === "free") {
          const owners = [...locs.keys()];
          if (owners.length === 0) continue;
          const owner = owners[s.pick % owners.length]!;
          views.push([slabs.get(locs.get(owner)!), contents.get(owner)!]);
          slabs.free(locs.get(owner)!);
          locs.delete(owner);
          contents.delete(owner);
        } else {
          while (slabs.evacuationPending) slabs.evacuateOne();
          // Live records fill at least half of every sealed slab, so slabs cost at most about twice
          // the live bytes (with their 8-byte headers), plus the slab being filled.
          let liveRecordBytes = 0;
          for (const value of contents.values()) liveRecordBytes += 8 + ((value.byteLength + 3) & ~3);
          const ownSlabs = [...contents.values()]
            .filter((v) => 8 + v.byteLength > 16)
            .reduce((n, v) => n + 8 + v.byteLength, 0);
          expect(slabs.allocatedBytes).toBeLessThanOrEqual(2 * liveRecordBytes + 64 + ownSlabs);
        }
        for (const [owner, loc] of locs) expect([...slabs.get(loc)]).toEqual([...contents.get(owner)!]);
        for (const [view, was] of views) expect([...view]).toEqual([...was]);
      }
    }),
    { numRuns: 200 },
  );
});

test("the store with a tiny layout agrees with a model: reads at every revision, scans both ways, through GC and evacuation", () => {
  const KEYS = Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, "0")}`);
  const op: fc.Arbitrary<WriteOp> = fc.record({
    key: fc.constantFrom(...KEYS),
    value: fc.option(fc.uint8Array({ maxLength: 30 }), { nil: null }),
  });
  const batch = fc.uniqueArray(op, { minLength: 1, maxLength: 6, selector: (o) => o.key });
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.tuple(batch, fc.nat({ max: 3 })), { maxLength: 60 }),
      (historyRevisions, commands) => {
        const store = createMvccStore({
          historyRevisions,
          tuning: { slabBytes: 64, leafMax: 2, chunkBits: 2, ringMin: 1 },
        });
        const history: Map<string, Uint8Array>[] = [new Map()];
        for (const [ops, gcSlices] of commands) {
          store.apply({ revision: store.revision + 1, ops });
          const live = new Map(history.at(-1)!);
          for (const { key, value } of ops) value === null ? live.delete(key) : live.set(key, value);
          history.push(live);
          for (let i = 0; i < gcSlices; i++) store.collectGarbage(2);
          for (let revision = store.compactedRevision; revision <= store.revision; revision++) {
            const state = history[revision]!;
            const read = store.read(KEYS, revision).map((v) => (v === undefined ? undefined : [...v]));
            expect(read).toEqual(KEYS.map((k) => (state.has(k) ? [...state.get(k)!] : undefined)));
            const scanned = store.scan({ limit: 100, revision }).records.map((r) => r.key);
            expect(scanned).toEqual([...state.keys()].sort());
            const reversed = store
              .scan({ limit: 100, revision, reverse: true, after: "k20" })
              .records.map((r) => r.key);
            expect(reversed).toEqual(
              [...state.keys()]
                .filter((k) => k < "k20")
                .sort()
                .reverse(),
            );
          }
        }
        while (store.collectGarbage(5).more) {}
        const last = history.at(-1)!;
        expect(store.stats()).toMatchObject({
          keys: last.size,
          valueBytes: [...last.values()].reduce((n, v) => n + v.byteLength, 0),
        });
      },
    ),
    { numRuns: 200 },
  );
});

test("key bytes: a stored key decodes to itself and compares with any string as native < does", () => {
  const anyKey = fc.oneof(
    key,
    fc.string({ unit: "binary", maxLength: 20 }),
    fc.string({ unit: "grapheme-ascii", minLength: 8_190, maxLength: 8_200 }),
  );
  fc.assert(
    fc.property(anyKey, anyKey, (a, b) => {
      const length = storedLength(a);
      const bytes = new Uint8Array(length + 3).fill(0xee); // stored 2 bytes in: it writes only its own
      writeStored(a, bytes, 2, length);
      expect([bytes[1], bytes[length + 2]]).toEqual([0xee, 0xee]);
      expect(decodeStored(bytes, 2, length)).toBe(a);
      const order = a < b ? -1 : a > b ? 1 : 0;
      expect(Math.sign(compareStored(bytes, 2, length, b))).toBe(order);
      expect(equalsStored(bytes, 2, length, b)).toBe(a === b);
      // A key read from a file as ASCII bytes compares the same as its string.
      const utf8 = new TextEncoder().encode(b);
      if (utf8.byteLength === b.length && isAscii(utf8, 0, utf8.byteLength)) {
        const ascii = new Uint8Array([0xee, ...utf8]);
        expect(Math.sign(compareStoredAscii(bytes, 2, length, ascii, 1, b.length))).toBe(order);
      }
    }),
    { numRuns: 300 },
  );
});

test("key bytes: two keys that begin alike compare as native < does whatever part of that beginning is skipped, narrow or wide", () => {
  fc.assert(
    fc.property(key, key, key, (prefix, restA, restB) => {
      const [a, b] = [prefix + restA, prefix + restB];
      const length = storedLength(a);
      const bytes = new Uint8Array(length);
      writeStored(a, bytes, 0, length);
      const order = a < b ? -1 : a > b ? 1 : 0;
      for (let shared = 0; shared <= prefix.length; shared++)
        expect(Math.sign(compareStored(bytes, 0, length, b, shared))).toBe(order);
    }),
    { numRuns: 300 },
  );
});

test("VersionChains agrees with an array of versions per key: puts, deletes, in-place rewrites, compactions, reads at every revision", () => {
  type Step =
    | { kind: "put"; key: number; size: number; raiseFloor: boolean; expiresAtMs: number | undefined }
    | { kind: "del"; key: number }
    | { kind: "compact"; key: number; advance: number }
    | { kind: "evacuate" };
  const KEY_NAMES = ["a", "b", "c"];
  const keyPick = fc.nat({ max: KEY_NAMES.length - 1 });
  const step: fc.Arbitrary<Step> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant("put" as const),
        key: keyPick,
        size: fc.nat({ max: 20 }),
        raiseFloor: fc.boolean(),
        // A TTL deadline on some puts: the sparse column's chunks appear, and their rows are reused without one.
        expiresAtMs: fc.option(fc.integer({ min: 1, max: 1e12 }), { nil: undefined, freq: 3 }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("del" as const), key: keyPick }) },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant("compact" as const), key: keyPick, advance: fc.nat({ max: 6 }) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("evacuate" as const) }) },
  );
  /** A version of the model: its revision, value (null: a tombstone) and TTL deadline. */
  type Modelled = { revision: number; value: Uint8Array | null; expiresAtMs?: number };
  fc.assert(
    // ringMin of 1 to 4: chains get rings after a few versions and lose them, again and again.
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 150, size: "max" }), (ringMin, steps) => {
      const chains = new VersionChains({ ringMin, chunkBits: 2, slabBytes: 64 });
      const model = KEY_NAMES.map((): Modelled[] => []);
      let revision = 0;
      // The GC floor only rises, as the store's does; reads below it are not asked for.
      let floor = 0;
      const idOf = (key: number) => chains.index.find(KEY_NAMES[key]!);
      for (const s of steps) {
        const versions = s.kind === "evacuate" ? [] : model[s.key]!;
        if (s.kind === "put") {
          const value = Uint8Array.from({ length: s.size }, (_, i) => (revision + i) & 0xff);
          const id = idOf(s.key);
          revision++;
          // Without history the floor is the revision being written (the store's floor after the commit).
          if (s.raiseFloor) floor = revision;
          // As the store does: a lone version at or below the floor is rewritten in place.
          if (id !== NONE && revision <= floor && chains.hasSingleVersion(id)) {
            chains.replaceOnly(id, revision, value, s.expiresAtMs);
            versions.splice(0, 1);
          } else chains.append(KEY_NAMES[s.key]!, id, revision, value, s.expiresAtMs);
          versions.push({ revision, value, expiresAtMs: s.expiresAtMs });
        } else if (s.kind === "del") {
          if (versions.length === 0 || versions.at(-1)!.value === null) continue;
          chains.append(KEY_NAMES[s.key]!, idOf(s.key), ++revision, null);
          versions.push({ revision, value: null });
        } else if (s.kind === "compact") {
          floor = Math.min(revision, floor + s.advance);
          const id = idOf(s.key);
          const visible = versions.findLastIndex((v) => v.revision <= floor);
          const drop = visible === -1 ? 0 : versions[visible]!.value === null ? visible + 1 : visible;
          expect(id === NONE ? 0 : chains.compact(id, floor)).toBe(drop);
          versions.splice(0, drop);
        } else {
          for (let moves = 0; chains.evacuationPending && moves < 1_000; moves++) chains.evacuateSlab();
        }
        KEY_NAMES.forEach((name, key) => {
          const id = chains.index.find(name);
          const expected = model[key]!;
          expect(id === NONE ? [] : chains.versions(id).map((slot) => chains.revision(slot))).toEqual(
            expected.map((v) => v.revision),
          );
          for (let at = floor; at <= revision + 1; at++) {
            const want = expected.findLast((v) => v.revision <= at);
            const slot = id === NONE ? NONE : chains.versionAt(id, at);
            expect(slot === NONE ? undefined : chains.revision(slot)).toBe(want?.revision);
            if (want !== undefined) expect(chains.value(slot)).toEqual(want.value);
            if (want?.value) expect(chains.version(slot).expiresAtMs).toBe(want.expiresAtMs);
          }
        });
      }
    }),
    { numRuns: 300 },
  );
});

test("VersionRing agrees with an array: pushes at the newest end, drops at the oldest, through growing and shrinking", () => {
  type Step = { kind: "push"; count: number } | { kind: "drop"; few: number; share: number };
  // Drops of a few versions (a write's compaction) put the oldest anywhere in the ring when it
  // next grows; drops of a share of them (a released snapshot) make it shrink.
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant("push" as const), count: fc.integer({ min: 1, max: 40 }) }),
    fc.record({
      kind: fc.constant("drop" as const),
      few: fc.nat({ max: 3 }),
      share: fc.constantFrom(0, 0, 0.5, 0.9, 1),
    }),
  );
  fc.assert(
    fc.property(fc.nat({ max: 40 }), fc.array(step, { maxLength: 60, size: "max" }), (initial, steps) => {
      const ring = new VersionRing(initial);
      const model: { revision: number; slot: number }[] = [];
      let revision = 0;
      for (const s of steps) {
        if (s.kind === "push") {
          for (let i = 0; i < s.count; i++) {
            revision += 1 + (i % 3);
            ring.push(revision, revision * 7);
            model.push({ revision, slot: revision * 7 });
          }
        } else {
          const n = Math.min(model.length, s.few + Math.floor(s.share * model.length));
          ring.dropOldest(n);
          model.splice(0, n);
        }
        expect(ring.length).toBe(model.length);
        model.forEach((version, position) => {
          expect(ring.revision(position)).toBe(version.revision);
          expect(ring.slot(position)).toBe(version.slot);
        });
      }
    }),
    { numRuns: 200 },
  );
});
