import type { Operation } from "./history.ts";

/**
 * A history as one doubly linked list of call and return events in real-time order. Linearizing an
 * operation lifts its call and its return out of the list; backtracking puts them back in reverse
 * order (each removed event keeps its own links, so restoring is O(1), as in dancing links).
 *
 *   head ⇄ call A ⇄ call B ⇄ ret A ⇄ call C ⇄ ret B ⇄ ret C        A and B overlap
 *   linearize B:   head ⇄ call A ⇄ ret A ⇄ call C ⇄ ret C
 *
 * At equal times calls come first: operations that touch the same instant count as concurrent, so
 * a coarse clock can never make a correct history look illegal (it can hide an ordering, though).
 */
export interface EventNode {
  /** The operation's index in the partition being checked; -1 for the head. */
  op: number;
  isCall: boolean;
  time: number;
  prev: EventNode | null;
  next: EventNode | null;
  /** A call's return. */
  match: EventNode | null;
}

/** The list's head, before the first event; the list is empty when `head.next` is null. */
export function eventList(operations: readonly Operation<unknown, unknown>[]): EventNode {
  const head: EventNode = {
    op: -1,
    isCall: false,
    time: Number.NEGATIVE_INFINITY,
    prev: null,
    next: null,
    match: null,
  };
  const events: EventNode[] = [];
  operations.forEach((operation, op) => {
    const ret: EventNode = { op, isCall: false, time: operation.ret, prev: null, next: null, match: null };
    events.push({ op, isCall: true, time: operation.call, prev: null, next: null, match: ret }, ret);
  });
  events.sort((a, b) => a.time - b.time || Number(b.isCall) - Number(a.isCall) || a.op - b.op);
  let last = head;
  for (const event of events) {
    event.prev = last;
    last.next = event;
    last = event;
  }
  return head;
}

/** Take a call and its return out of the list. */
export function lift(call: EventNode): void {
  const ret = call.match!;
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Undo the latest `lift` still in effect. */
export function unlift(call: EventNode): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}
