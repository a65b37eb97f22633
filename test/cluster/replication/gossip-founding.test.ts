import { describe, expect, test } from "bun:test";
import type { MemberStatus } from "../../../src/cluster/gossip/gossiper.ts";
import {
  decideFounding,
  foundersDigest,
  foundingMetadata,
  type GossipServer,
  groupMembers,
  KEY_FOUNDERS,
  KEY_RAFT,
  RAFT_MEMBER,
} from "../../../src/cluster/replication/gossip-founding.ts";

const server = (nodeId: string, expect: number, extra: Record<string, string> = {}, status: MemberStatus = "alive") =>
  ({
    nodeId,
    status,
    metadata: { ...foundingMetadata(`127.0.0.1:${nodeId.slice(1)}`, expect), ...extra },
  }) satisfies GossipServer;

describe("decideFounding: what a --bootstrap-expect server does with what gossip shows", () => {
  test("the worked example: wait, found with the same three on each, join a formed group, join when more than N", () => {
    expect(decideFounding([server("n1", 3), server("n2", 3)], "n1", 3).decision).toEqual({
      kind: "wait",
      why: "2 of 3 servers seen (n1, n2)",
    });
    const three = [server("n3", 3), server("n1", 3), server("n2", 3)];
    for (const self of ["n1", "n2", "n3"])
      expect(decideFounding(three, self, 3).decision).toEqual({
        kind: "found",
        founders: [
          { name: "n3", peerAddress: "127.0.0.1:3" },
          { name: "n1", peerAddress: "127.0.0.1:1" },
          { name: "n2", peerAddress: "127.0.0.1:2" },
        ],
      });
    const formed = [server("n1", 3, { [KEY_RAFT]: RAFT_MEMBER }), server("n4", 3)];
    expect(decideFounding(formed, "n4", 3).decision.kind).toBe("join");
    expect(groupMembers(formed, "n4")).toEqual([{ name: "n1", peerAddress: "127.0.0.1:1" }]);
    expect(decideFounding([...three, server("n4", 3)], "n1", 3).decision).toEqual({
      kind: "join",
      why: "4 servers expect 3 (n1, n2, n3, n4): more than founders",
    });
  });

  test("a slower founder founds the group its peers founded; a newcomer in a dead founder's place joins it", () => {
    const member = { [KEY_RAFT]: RAFT_MEMBER, [KEY_FOUNDERS]: foundersDigest(["n3", "n2", "n1"]) };
    const formed = [server("n1", 3, member), server("n2", 3), server("n3", 3, member)];
    expect(decideFounding(formed, "n2", 3).decision.kind).toBe("found");
    const replaced = [server("n1", 3, member), server("n3", 3, member, "dead"), server("n5", 3)];
    const n5 = decideFounding([...replaced, server("n2", 3, member)], "n5", 3).decision;
    expect(n5).toEqual({ kind: "join", why: "a group is formed already" });
  });

  test("another N is refused and reported; dead, left and unaddressed servers do not count", () => {
    const view = decideFounding([server("n1", 3), server("n2", 3), server("n3", 2)], "n1", 3);
    expect(view.mismatched).toEqual(["n3"]);
    expect(view.decision.kind).toBe("wait");
    const gone = [server("n1", 3), server("n2", 3, {}, "dead"), server("n3", 3, {}, "left")];
    expect(decideFounding(gone, "n1", 3).decision.kind).toBe("wait");
    const noPeer = { nodeId: "n2", status: "alive" as const, metadata: {} };
    expect(decideFounding([server("n1", 2), noPeer], "n1", 2).decision.kind).toBe("wait");
    // A member gossip calls dead is no group to join.
    expect(
      decideFounding([server("n1", 3, { [KEY_RAFT]: RAFT_MEMBER }, "dead"), server("n4", 3)], "n4", 3).decision.kind,
    ).toBe("wait");
  });
});
