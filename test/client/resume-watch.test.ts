import { expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import type { WatchEvent } from "../../src/client/client.ts";
import { HomeKvRpcError } from "../../src/client/rpc-error.ts";
import { resumeWatch } from "../../src/client/watch.ts";
import { rejection } from "../helpers/rejection.ts";

const event = (revision: number, key: string): WatchEvent => ({
  type: "put",
  key,
  value: undefined,
  revision,
  createRevision: revision,
  version: 1,
});

/** Streams that each yield their events, then end with their error (or end quietly). */
function streams(...scripts: { events: WatchEvent[]; error?: Error }[]) {
  const opened: number[] = [];
  let failOvers = 0;
  const options = {
    attemptsMax: 2,
    open: async function* (from: number) {
      opened.push(from);
      const script = scripts[opened.length - 1]!;
      yield* script.events;
      if (script.error) throw script.error;
    },
    failOver: () => failOvers++,
  };
  return { options, opened, failOvers: () => failOvers };
}

async function collect(watch: AsyncIterable<WatchEvent>): Promise<string[]> {
  const keys: string[] = [];
  for await (const e of watch) keys.push(`${e.key}@${e.revision}`);
  return keys;
}

const unavailable = new HomeKvRpcError(Status.UNAVAILABLE, "the server is stopping");

test("a stream cut in the middle of a revision resumes at that revision, and its keys already delivered are not delivered again", async () => {
  const { options, opened, failOvers } = streams(
    { events: [event(4, "a"), event(5, "a"), event(5, "b")], error: unavailable },
    // The next server sends revision 5 whole, then goes on.
    { events: [event(5, "a"), event(5, "b"), event(5, "c"), event(6, "a")] },
  );
  expect(await collect(resumeWatch({ ...options, startRevision: 4 }))).toEqual(["a@4", "a@5", "b@5", "c@5", "a@6"]);
  expect(opened).toEqual([4, 5]);
  expect(failOvers()).toBe(1);
});

test("it gives up after attemptsMax failures in a row, and at once on an error that is an answer", async () => {
  const down = streams({ events: [], error: unavailable }, { events: [], error: unavailable });
  expect(await rejection(collect(resumeWatch({ ...down.options, startRevision: 1 })))).toBe(unavailable);
  const compacted = new HomeKvRpcError(Status.OUT_OF_RANGE, "compacted");
  const answer = streams({ events: [event(1, "a")], error: compacted });
  expect(await rejection(collect(resumeWatch({ ...answer.options, startRevision: 1 })))).toBe(compacted);
  expect(answer.failOvers()).toBe(0);
});
