import { expect, test } from "bun:test";
import { CallAdmission } from "../../../src/server/h2/call-admission.ts";

/**
 * The order calls start in on one connection (src/server/h2/call-admission.ts): at most
 * `runningMax` at once, none while there is no room, the others in the order they came, and one
 * that ends while it waits never starts.
 */

function admission(runningMax: number) {
  let room = true;
  const started: string[] = [];
  const calls = new CallAdmission<string>(runningMax, () => room);
  const admit = (name: string, onStart: () => void = () => {}) =>
    calls.admit(name, () => {
      started.push(name);
      onStart();
    });
  return {
    calls,
    started,
    admit,
    setRoom(value: boolean) {
      room = value;
    },
  };
}

test("past runningMax, calls wait and start in the order they came as running ones finish", () => {
  const { calls, started, admit } = admission(2);
  for (const name of ["a", "b", "c", "d", "e"]) admit(name);
  expect(started).toEqual(["a", "b"]);
  expect([calls.runningCount, calls.waitingCount]).toEqual([2, 3]);
  calls.done("b");
  expect(started).toEqual(["a", "b", "c"]);
  calls.forget("d"); // its client reset it while it waited
  calls.done("a");
  calls.done("a"); // done twice counts once
  expect(started).toEqual(["a", "b", "c", "e"]);
  expect([calls.runningCount, calls.waitingCount]).toEqual([2, 0]);
});

test("while there is no room nothing starts, and a new call waits behind those that came first", () => {
  const { calls, started, admit, setRoom } = admission(10);
  setRoom(false);
  admit("a");
  admit("b");
  expect(started).toEqual([]);
  setRoom(true);
  admit("c");
  expect(started).toEqual(["a", "b", "c"]);
  setRoom(false);
  calls.done("a");
  admit("d");
  calls.startWaiting();
  expect(started).toEqual(["a", "b", "c"]);
  setRoom(true);
  calls.startWaiting();
  expect(started).toEqual(["a", "b", "c", "d"]);
});

test("a call that is done as it starts (its handler threw) gives its place to the next without recursion", () => {
  const { calls, started, admit } = admission(1);
  const names = Array.from({ length: 10_000 }, (_, i) => `call ${i}`);
  admit("first");
  for (const name of names) admit(name, () => calls.done(name));
  calls.done("first");
  expect(started).toHaveLength(names.length + 1);
  expect([calls.runningCount, calls.waitingCount]).toEqual([0, 0]);
});
