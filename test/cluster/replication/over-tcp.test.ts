import { afterEach, expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import type { Raft } from "../../../src/cluster/raft/raft.ts";
import { foundGroupIfNew } from "../../../src/cluster/replication/bootstrap.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import { startReplicatedMember } from "../../../src/cluster/replication/replicated-member.ts";
import { withFaults } from "../../../src/cluster/transport/fault-injection.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { realFileSystem } from "../../../src/io/fs/real-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { Database } from "../../../src/storage/database.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { scratchDir } from "../../helpers/processes.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * Three members of one Raft group in this process, each with its own peer transport on a loopback
 * port (real TCP, authenticated with a cluster token), its Raft log in files of its own, its store
 * and database: the pieces `homekv serve` will run, put together without the server.
 */
interface Member {
  name: string;
  id: number;
  raft: Raft;
  db: Database;
  transport: ReturnType<typeof withFaults>;
  stop: () => Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startMembers(): Promise<Member[]> {
  const dir = scratchDir("homekv-raft-tcp-");
  cleanups.push(dir.cleanup);
  const ids = [1, 2, 3];
  const transports = ids.map((id) =>
    withFaults(
      createPeerTransport({ clusterId: "test", nodeId: `n${id}`, host: "127.0.0.1", port: 0, token: "secret" }),
      mulberry32(id),
    ),
  );
  for (const [i, transport] of transports.entries()) {
    for (const [j, other] of transports.entries()) if (i !== j) transport.addPeer(`n${j + 1}`, other.address);
  }
  const seeds = ids.map((id, i) => ({ name: `n${id}`, peerAddress: transports[i]!.address }));
  const members: Member[] = [];
  for (const [i, n] of ids.entries()) {
    const log = await DurableRaftLog.open(realFileSystem, `${dir.path}/n${n}`);
    await foundGroupIfNew(log, seeds, "new");
    const { db, raft } = startReplicatedMember({
      self: `n${n}`,
      seeds,
      raftLog: log,
      transport: transports[i]!,
      settings: { historyRevisions: 1_000 },
      tickMs: 10,
      random: mulberry32(100 + n),
      readTimeoutMs: 5_000,
      log: { info: () => {}, warn: () => {}, error: () => {} },
    });
    const stop = async () => {
      await db.close();
      transports[i]!.close();
      await log.close();
    };
    cleanups.push(stop);
    members.push({ name: `n${n}`, id: raftIdOf(`n${n}`), raft, db, transport: transports[i]!, stop });
  }
  return members;
}

const leaderOf = (members: Member[]) =>
  waitFor(() => members.find((m) => m.raft.role === "leader" && members.every((o) => o.raft.leader === m.id)), {
    what: "one leader that every member follows",
    timeoutMs: 15_000,
  });

test("over TCP: writes through the leader are applied by every member at the same revisions; reads after a barrier see them", async () => {
  const members = await startMembers();
  const leader = await leaderOf(members);
  for (let i = 1; i <= 20; i++) {
    expect((await leader.db.write([{ key: `k${i % 5}`, value: bytes(`v${i}`) }])).revision).toBe(i);
  }
  for (const member of members) {
    await member.db.readBarrier();
    expect(member.db.revision).toBe(20);
    expect(member.db.read(["k0", "k1"]).records.map((r) => text(r.value!))).toEqual(["v20", "v16"]);
  }
});

test("over TCP: the leader cut off by the network is replaced; writes go on; after the heal it follows and has them", async () => {
  const members = await startMembers();
  const old = await leaderOf(members);
  await old.db.write([{ key: "before", value: bytes("1") }]);
  const others = members.filter((m) => m !== old);
  // Cut both ways at the transports: what the old leader sends is lost, and what it would receive.
  old.transport.partition(
    others.map((m) => m.name),
    "both",
  );
  for (const m of others) m.transport.partition([old.name], "both");
  const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), {
    what: "a new leader among the other two",
    timeoutMs: 15_000,
  });
  const written = await next.db.write([{ key: "after", value: bytes("2") }]);
  for (const m of members) m.transport.heal();
  await waitFor(() => old.raft.leader === next.id && old.db.revision === written.revision, {
    what: "the old leader to follow the new one and apply its write",
    timeoutMs: 15_000,
  });
  expect(text(old.db.read(["after"]).records[0]!.value!)).toBe("2");
});
