import { expect, test } from "bun:test";
import { ForwardedWrites } from "../../../src/cluster/replication/forwarded-writes.ts";
import type { HomeKvError } from "../../../src/errors.ts";

test("a forwarded write whose index a snapshot covered before the leader's answer came is an unknown outcome, not 'not applied'", async () => {
  const writes = new ForwardedWrites<string>(60_000);
  // The follower forwards a write; the leader puts it at index 10, but its answer is slow.
  const write = writes.open("n1");
  // Meanwhile the follower, far behind, installs the leader's snapshot at 12: it holds the write
  // (applied inside the snapshot), and no entry of it is applied here to answer the waiter.
  writes.overtaken(12);
  // The answer arrives: index 10, already passed. Nothing says another entry took it.
  writes.located(write.seq, 10, 1, 12);
  const outcome = await write.done.then(
    () => undefined,
    (error: unknown) => error as HomeKvError,
  );
  expect(outcome?.code).not.toBe("E_PROPOSAL_DROPPED");
  expect(outcome?.message).toStartWith("outcome unknown");
});
