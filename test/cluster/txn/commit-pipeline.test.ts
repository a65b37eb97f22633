import { expect, test } from "bun:test";
import { CommitPipeline } from "../../../src/cluster/txn/commit-pipeline.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";

/** A promise settled from outside. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A pipeline whose oracle and log the test drives: each request for timestamps waits until the
 * test answers it, each proposal until the test applies it. Proposals are recorded in the order
 * they were made, which is the log's order.
 */
function driven() {
  const asked: { count: number; answer: ReturnType<typeof deferred<number>> }[] = [];
  const proposed: { ts: number; item: string; applied: ReturnType<typeof deferred<string>> }[] = [];
  const leadership = { term: 1 as number | undefined };
  const pipeline = new CommitPipeline<string, string>({
    leaderTerm: () => leadership.term,
    timestamps(count) {
      const answer = deferred<number>();
      asked.push({ count, answer });
      return answer.promise;
    },
    propose(ts, item) {
      const applied = deferred<string>();
      proposed.push({ ts, item, applied });
      return applied.promise;
    },
  });
  return { pipeline, asked, proposed, leadership };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("writes get timestamps in the order they came, one request at a time, and are proposed in that order", async () => {
  const { pipeline, asked, proposed } = driven();
  const a = pipeline.submit("a");
  const b = pipeline.submit("b");
  expect(asked.map((r) => r.count)).toEqual([1]); // a asked alone; b waits for the next request
  const c = pipeline.submit("c");
  asked[0]!.answer.resolve(10);
  await turn();
  expect(asked.map((r) => r.count)).toEqual([1, 2]);
  asked[1]!.answer.resolve(20);
  await turn();
  expect(proposed.map((p) => `${p.item}@${p.ts}`)).toEqual(["a@10", "b@20", "c@21"]);
  for (const p of proposed) p.applied.resolve(`ok ${p.item}`);
  expect(await Promise.all([a, b, c])).toEqual([
    { ts: 10, result: "ok a" },
    { ts: 20, result: "ok b" },
    { ts: 21, result: "ok c" },
  ]);
});

test("a barrier waits for every write whose timestamp was asked for before it, applied or failed, and for none asked after", async () => {
  const { pipeline, asked, proposed } = driven();
  pipeline.submit("a").catch(() => {});
  let passed = false;
  const barrier = pipeline.barrier().then(() => {
    passed = true;
  });
  pipeline.submit("later").catch(() => {}); // asked for after the barrier: not waited for
  await turn();
  expect(passed).toBe(false);
  asked[0]!.answer.resolve(5);
  await turn();
  expect(passed).toBe(false); // proposed, not applied
  proposed[0]!.applied.reject(new Error("not the leader"));
  await barrier;
  expect(passed).toBe(true);
  expect(proposed.map((p) => p.item)).toEqual(["a"]); // "later" still waits for its timestamp
  // With nothing asked for, a barrier passes at once.
  const idle = driven();
  await idle.pipeline.barrier();
});

test("a failed request for timestamps fails its writes, and the next ones are asked for", async () => {
  const { pipeline, asked, proposed } = driven();
  const a = pipeline.submit("a");
  const b = pipeline.submit("b");
  asked[0]!.answer.reject(new Error("no meta leader"));
  expect(await rejectionMessage(a)).toMatch("no meta leader");
  await turn();
  asked[1]!.answer.resolve(7);
  await turn();
  proposed[0]!.applied.resolve("ok");
  expect(await b).toEqual({ ts: 7, result: "ok" });
});

test("a batch whose leader lost the term while its timestamps were asked for is refused, not proposed (a read elsewhere may be above them)", async () => {
  const { pipeline, asked, proposed, leadership } = driven();
  const a = pipeline.submit("a");
  leadership.term = undefined; // another node leads...
  leadership.term = 3; // ...and this one again, in a later term
  asked[0]!.answer.resolve(10);
  expect(await rejectionMessage(a)).toMatch(/leadership of the partition changed/);
  expect(proposed).toEqual([]);
  // The next write, asked for in the new term, goes through.
  const b = pipeline.submit("b");
  await turn();
  asked[1]!.answer.resolve(20);
  await turn();
  expect(proposed.map((p) => [p.ts, p.item])).toEqual([[20, "b"]]);
  proposed[0]!.applied.resolve("ok");
  expect(await b).toEqual({ ts: 20, result: "ok" });
  // A follower asks for nothing.
  leadership.term = undefined;
  expect(await rejectionMessage(pipeline.submit("c"))).toMatch(/E_NOT_LEADER|leadership/);
  expect(asked.length).toBe(2);
});
