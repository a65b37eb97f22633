import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/errors.ts";
import { SnapshotRegistry } from "../../src/storage/mvcc/snapshots.ts";

describe("SnapshotRegistry", () => {
  test("oldest() follows releases across shared and distinct revisions", () => {
    const registry = new SnapshotRegistry();
    expect(registry.oldest()).toBeUndefined();
    expect(registry.size).toBe(0);

    registry.open(2);
    registry.open(2);
    registry.open(5);
    registry.open(9);
    registry.open(9);
    expect(registry.size).toBe(5);
    expect(registry.oldest()).toBe(2);

    // A revision stays the oldest until its last snapshot is released.
    registry.release(2);
    expect(registry.oldest()).toBe(2);
    registry.release(2);
    expect(registry.oldest()).toBe(5);

    // Releasing a newer one first does not move the oldest.
    registry.release(9);
    expect(registry.oldest()).toBe(5);
    registry.release(5);
    expect(registry.oldest()).toBe(9);
    expect(registry.size).toBe(1);
    registry.release(9);
    expect(registry.oldest()).toBeUndefined();
    expect(registry.size).toBe(0);
  });

  test("a revision emptied and reopened is still ordered after older ones", () => {
    const registry = new SnapshotRegistry();
    registry.open(3);
    registry.open(7);
    registry.release(7);
    registry.open(7);
    registry.open(8);
    registry.release(3);
    expect(registry.oldest()).toBe(7);
    registry.release(7);
    expect(registry.oldest()).toBe(8);
  });

  test("releasing a revision with no open snapshot throws", () => {
    const registry = new SnapshotRegistry();
    expect(() => registry.release(1)).toThrow(AssertionError);
    registry.open(4);
    expect(() => registry.release(3)).toThrow(AssertionError);
    registry.release(4);
    expect(() => registry.release(4)).toThrow(AssertionError);
    expect(registry.size).toBe(0);
  });

  test("opening below the newest opened revision throws", () => {
    const registry = new SnapshotRegistry();
    registry.open(6);
    expect(() => registry.open(5)).toThrow(AssertionError);
  });
});
