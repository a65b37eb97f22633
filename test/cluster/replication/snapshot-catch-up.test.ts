import { afterEach, expect, test } from "bun:test";
import { HomeKvError } from "../../../src/errors.ts";
import type { Database } from "../../../src/storage/database.ts";
import type { WatchBatch, WatchEnd } from "../../../src/storage/watch/watch-hub.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startTcpGroup, type TcpGroup, type TcpGroupOptions, type TcpMember } from "./tcp-group.ts";

/**
 * The checkpoint as the Raft snapshot, in one process over real TCP (tcp-group.ts): members
 * checkpoint every few kilobytes of commands and keep 20 entries of log behind, so a member cut
 * off for a few hundred writes can only catch up by the leader's snapshot, streamed in 1 KiB chunks.
 */
const groups: TcpGroup[] = [];
afterEach(async () => {
  for (const group of groups.splice(0)) await group.close();
});

const SMALL: TcpGroupOptions = {
  checkpointLogBytes: 4_096,
  logTailEntries: 20,
  snapshotStream: { chunkBytes: 1_024, windowChunks: 2 },
};

async function startGroup(options: TcpGroupOptions): Promise<TcpGroup> {
  const group = await startTcpGroup({ ...SMALL, ...options });
  groups.push(group);
  return group;
}

const KEYS = Array.from({ length: 40 }, (_, i) => `key-${String(i).padStart(2, "0")}`);

/**
 * `count` writes through the leader, each setting two keys and deleting a third. A write the
 * leader refused as not applied (leadership moved, on a loaded machine) goes to the next leader.
 */
async function writeMany(group: TcpGroup, count: number, tag: string): Promise<number> {
  let revision = 0;
  let leader = await group.leader();
  for (let i = 0; i < count; i++) {
    const [a, b, c] = [KEYS[i % 40]!, KEYS[(i * 7 + 3) % 40]!, KEYS[(i * 13 + 5) % 40]!];
    const ops = [
      { key: a, value: bytes(`${tag}-${i}-a`) },
      { key: b, value: bytes(`${tag}-${i}-b`) },
      ...(c === a || c === b ? [] : [{ key: c, value: null }]),
    ];
    for (let attempt = 0; ; attempt++) {
      try {
        revision = (await leader.db.write(ops)).revision;
        break;
      } catch (error) {
        const retry = error instanceof HomeKvError && ["E_NOT_LEADER", "E_PROPOSAL_DROPPED"].includes(error.code);
        if (!retry || attempt === 5) throw error;
        leader = await group.leader();
      }
    }
  }
  return revision;
}

const valuesAt = (db: Database, revision: number) =>
  db.read(KEYS, revision).records.map((r) => (r.value === undefined ? null : text(r.value)));

/** Every member reads the same values at every revision all of them still keep. */
function expectSameHistory(members: TcpMember[]): void {
  const revision = members[0]!.db.revision;
  for (const m of members) expect(m.db.revision).toBe(revision);
  const from = Math.max(1, ...members.map((m) => m.db.compactedRevision));
  expect(from).toBeLessThan(revision);
  for (let r = from; r <= revision; r++) {
    const expected = valuesAt(members[0]!.db, r);
    for (const m of members.slice(1)) expect(valuesAt(m.db, r)).toEqual(expected);
  }
}

/** Takes every batch a watcher is woken for; records how it ended. */
function record(db: Database, startRevision: number) {
  const batches: WatchBatch[] = [];
  const ended: WatchEnd[] = [];
  const watcher = db.watches.watch(
    { start: "", startRevision, prevValue: false },
    {
      wake: () => queueMicrotask(drain),
      end: (end) => ended.push(end),
    },
  );
  function drain() {
    // Bounded by what is queued now, and catch-up pages read as they are taken.
    for (let i = 0; i < 100_000; i++) {
      const batch = watcher.take();
      if (batch === undefined) return;
      batches.push(batch);
    }
  }
  return { batches, ended, watcher, drain };
}

/**
 * Picks a follower (`before` sees it first, while it is empty), writes five revisions, cuts it
 * off, and writes `writes` more until every other member's log is compacted past its own.
 */
async function cutOffWhileOthersCompact<T>(group: TcpGroup, writes: number, before: (lagging: TcpMember) => T) {
  const leader = await group.leader();
  const lagging = group.members.find((m) => m !== leader)!;
  const watch = before(lagging);
  await writeMany(group, 5, "before");
  await waitFor(() => lagging.db.revision === 5, { what: "the follower to apply the first five writes" });
  group.isolate(lagging);
  const revision = await writeMany(group, writes, "cut");
  // The log the lagging member would need is gone from every other member.
  const lagged = lagging.raft.status().lastIndex;
  await waitFor(() => group.members.filter((m) => m !== lagging).every((m) => m.raft.status().snapshotIndex > lagged), {
    what: `the others to compact their logs past index ${lagged}`,
    detail: () => group.members.map((m) => `${m.name}: ${m.raft.status().snapshotIndex}`).join(", "),
  });
  return { lagging, revision, watch };
}

test("a member cut off while the others compact catches up by the leader's snapshot: the same values at every revision, a watcher goes on across the install", async () => {
  const group = await startGroup({ settings: { historyRevisions: 10_000 } });
  const { lagging, revision, watch } = await cutOffWhileOthersCompact(group, 300, (member) => record(member.db, 0));
  expect(lagging.db.revision).toBe(5);
  group.heal();
  await waitFor(() => lagging.db.revision === revision, {
    what: `the lagging member to reach revision ${revision}`,
    timeoutMs: 20_000,
    detail: () => lagging.lines.join("\n"),
  });
  expect(lagging.lines.some((line) => line.startsWith("installed the leader's snapshot"))).toBe(true);
  // Streamed whole at the first try: no stall, gap or refusal on either side.
  expect(group.members.flatMap((m) => m.lines).filter((line) => /gave up|refused|took no part/.test(line))).toEqual([]);
  // Writes go on after the install, at the next revisions, on every member.
  const after = await writeMany(group, 3, "after");
  expect(after).toBe(revision + 3);
  await waitFor(() => group.members.every((m) => m.db.revision === after), { what: "every member at the last write" });
  expectSameHistory(group.members);
  // The watcher saw every revision once, in order, none skipped by the install.
  await waitFor(() => watch.batches.at(-1)?.revision === after, {
    what: `the watcher to reach revision ${after}`,
    detail: () => `last ${watch.batches.at(-1)?.revision}, ended ${JSON.stringify(watch.ended)}`,
  });
  expect(watch.ended).toEqual([]);
  expect(watch.batches.map((b) => b.revision)).toEqual(Array.from({ length: after }, (_, i) => i + 1));
});

test("across an install, a watcher whose revisions the snapshot's history no longer holds ends as compacted, with where it was", async () => {
  const group = await startGroup({ settings: { historyRevisions: 50 } });
  const { lagging, revision, watch } = await cutOffWhileOthersCompact(group, 200, (member) => record(member.db, 0));
  group.heal();
  await waitFor(() => lagging.db.revision === revision, { what: "the lagging member to catch up", timeoutMs: 20_000 });
  await waitFor(() => watch.ended.length > 0, { what: "the watcher to end" });
  expect(watch.ended[0]!.reason).toBe("compacted");
  expect(watch.ended[0]!.resumeRevision).toBe(6);
  expect(watch.batches.map((b) => b.revision)).toEqual([1, 2, 3, 4, 5]);
  expectSameHistory(group.members);
});

test("a member restarted loads its newest checkpoint and replays only the log after it: the same state, revisions dense", async () => {
  const group = await startGroup({ settings: { historyRevisions: 10_000 } });
  const revision = await writeMany(group, 150, "w");
  const leader = await group.leader();
  const member = group.members.find((m) => m !== leader)!;
  await waitFor(() => member.db.revision === revision && member.raft.status().snapshotIndex > 0, {
    what: "a follower with every write and a compacted log",
  });
  await member.stop();
  const back = await group.start(member.id);
  const loaded = back.lines.find((line) => line.startsWith("loaded the checkpoint at index"));
  expect(loaded).toBeDefined();
  await waitFor(() => back.db.revision === revision, { what: `the restarted member at revision ${revision}` });
  const next = await writeMany(group, 2, "again");
  expect(next).toBe(revision + 2);
  await waitFor(() => group.members.every((m) => m.db.revision === next), { what: "every member at the last write" });
  expectSameHistory(group.members);
});

test("a member checkpoints after --checkpoint-raft-entries entries even when their bytes are few, and its log is compacted to the tail", async () => {
  // Bytes enough never to trigger: only the entry count can.
  const group = await startGroup({ checkpointLogBytes: 256 << 20, checkpointLogEntries: 60 });
  const revision = await writeMany(group, 150, "count");
  await waitFor(() => group.members.every((m) => m.db.revision === revision && m.raft.status().snapshotIndex > 0), {
    timeoutMs: 20_000,
    what: "every member to checkpoint and compact its log to the checkpoint",
    detail: () => group.members.map((m) => `${m.name}: ${m.raft.status().snapshotIndex}`).join(", "),
  });
  for (const m of group.members) {
    const { snapshotIndex, lastIndex } = m.raft.status();
    // What remains of the log is bounded by the checkpoint interval and the tail, not by the writes.
    expect(lastIndex - snapshotIndex).toBeLessThanOrEqual(60 + 20 + 10);
  }
});

test("the Checkpoint call on a follower that fell behind holds every write acknowledged before it (a serializable one, what it applied)", async () => {
  const group = await startGroup({ settings: { historyRevisions: 10_000 } });
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  // The follower hears nothing while the other two commit: it has none of these writes.
  group.isolate(follower);
  const revision = await writeMany(group, 5, "behind");
  expect(follower.db.revision).toBeLessThan(revision);
  // Serializable: what the follower applied, though it cannot reach its group.
  const applied = follower.db.revision;
  expect(await follower.db.checkpoint({ serializable: true })).toMatchObject({ revision: applied, entries: 0 });
  const written = follower.db.checkpoint();
  group.heal();
  const info = await written;
  expect(info.revision).toBe(revision);
  expect(info.entries).toBe(leader.db.stats().keys);
});
