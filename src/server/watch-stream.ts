import { status as Status } from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";
import { WatchEvent_Type, type WatchRequest, type WatchResponse } from "../gen/homekv_service.ts";
import { eventBytes } from "../storage/watch/batch-queue.ts";
import type { ShedReason } from "../storage/watch/queue-budget.ts";
import type { WatchBatch, WatchEnd, Watcher, Watches, WatchOptions } from "../storage/watch/watch-hub.ts";
import type { CallContext, CallStatus, MessageSink } from "./call.ts";
import { resolveKeyRange } from "./key-range.ts";
import { LIMIT_FLAGS, type Limits } from "./limits.ts";
import { checkDecodedRequest } from "./request-size.ts";
import { toStatus } from "./status.ts";
import type { InFlight, WatchSendBudget } from "./watch-send-budget.ts";

const STATUS_BY_END: Readonly<Record<WatchEnd["reason"], Status>> = {
  overflow: Status.RESOURCE_EXHAUSTED,
  compacted: Status.OUT_OF_RANGE,
  closed: Status.UNAVAILABLE,
};

/**
 * Serves one Watch stream: checks the request, registers a watcher with the hub, and writes its
 * batches (one revision per message) as fast as the client reads them — one message at a time,
 * each reserved from the server-wide `budget` first, so that clients that stop reading hold at most
 * one message each and together no more than the budget (a stuck one is reset when others need the
 * room). Meanwhile events pile up in the watcher's bounded queue, counted in the budget's `queues`:
 * the hub ends a watcher that falls too far behind, and the budget the ones furthest behind when all
 * the queues together hold too much. An error status goes out after the messages already written, so
 * the revision it names to resume from follows the last one the client received. A client that
 * cancels or goes away unregisters the watcher.
 *
 * A revision whose events are over --max-response-bytes (a Del of many large keys watched with
 * previous values; a TTL sweep) goes out as several messages with the same revision, in key order,
 * as etcd's `fragment` does: refusing it would stall the watch there for good, and building it whole
 * could take gigabytes. A revision is taken from the queue once its last part is written, so a watch
 * that ends in the middle resumes at that revision, and the parts already received come again.
 */
export function serveWatch(
  request: WatchRequest,
  call: CallContext,
  sink: MessageSink<WatchResponse>,
  hub: Watches,
  limits: Limits,
  budget: WatchSendBudget,
  onBug: (error: unknown) => void,
): void {
  let watcher: Watcher | undefined;
  let finished = false;
  let scheduled = false;
  let inFlight: InFlight | undefined;
  /** Events of the revision at the head of the queue already written (when it goes out in parts). */
  let sentEvents = 0;
  const account = budget.queues.open((reason) => watcher?.overflow(shedMessage(reason)));

  const stop = () => {
    finished = true;
    budget.forget(schedule);
    watcher?.close();
    account.close();
  };

  const finish = (status: CallStatus) => {
    if (finished) return;
    stop();
    if (!call.cancelled) sink.end(status);
  };

  const evict = () => {
    stop();
    sink.reset();
  };

  const pump = () => {
    scheduled = false;
    if (finished || inFlight || watcher === undefined) return;
    try {
      const batch = watcher.peek();
      if (batch === undefined) return; // the hub wakes us when more comes
      const part = nextPart(batch, sentEvents, limits.responseBytesMax);
      const reservation = budget.reserve(part.bytes, schedule, evict);
      if (!reservation) return; // the budget wakes us at its next release; the batch stays queued
      inFlight = reservation;
      const whole = sentEvents === 0 && part.end === batch.events.length;
      const message = whole ? batch : { revision: batch.revision, events: batch.events.slice(sentEvents, part.end) };
      if (part.end === batch.events.length) {
        watcher.take();
        sentEvents = 0;
      } else sentEvents = part.end;
      // The callback comes once HTTP/2 has taken the message: a client that reads nothing keeps it.
      sink.write(toWatchResponse(message), () => {
        budget.release(reservation);
        inFlight = undefined;
        schedule();
      });
    } catch (error) {
      finish(toStatus(error, onBug));
    }
  };

  // Never write from inside the hub's call (that is the store applying a command): next turn.
  function schedule() {
    if (scheduled || finished || inFlight) return;
    scheduled = true;
    setImmediate(pump);
  }

  call.onCancel(() => {
    stop();
    if (inFlight) budget.release(inFlight); // the stream is gone, and what was buffered for it
  });
  try {
    checkDecodedRequest(request, limits);
    watcher = hub.watch(
      { ...watchOptions(request, limits), meter: account },
      {
        wake: schedule,
        end: (end) => setImmediate(() => finish({ code: STATUS_BY_END[end.reason], details: end.message })),
      },
    );
  } catch (error) {
    finish(toStatus(error, onBug));
    return;
  }
  // The client is gone already (it cancelled before we registered): nothing will say so again.
  if (call.cancelled) finish({ code: Status.CANCELLED, details: "cancelled" });
  else schedule();
}

/** The events of `batch` from `from` that one message may carry: within `bytesMax`, at least one. */
export function nextPart(batch: WatchBatch, from: number, bytesMax: number): { end: number; bytes: number } {
  let end = from;
  let bytes = 0;
  for (; end < batch.events.length; end++) {
    // Previous values are counted when present: they are there only when the watch asked for them.
    const size = eventBytes(batch.events[end]!, true);
    if (end > from && bytes + size > bytesMax) break;
    bytes += size;
  }
  return { end, bytes };
}

function shedMessage({ heldBytes, bytesMax, waitingBytes }: ShedReason): string {
  return (
    `the watchers of this server held ${heldBytes} bytes of queued events, over the limit of ${bytesMax} bytes ` +
    `(half of ${LIMIT_FLAGS.watchBufferBytesMax}), and this one, among the furthest behind, had ${waitingBytes} of them waiting`
  );
}

/** What a WatchRequest asks for: exactly one of a key, a prefix or a range [start, end). */
export function watchOptions(request: WatchRequest, limits: Limits): WatchOptions {
  const { startRevision, prevValue } = request;
  if (!Number.isSafeInteger(startRevision) || startRevision < 0) {
    throw new HomeKvError("E_INVALID", `start_revision ${startRevision} is not a revision`);
  }
  const range = resolveKeyRange(request, limits, {
    choices: "exactly one of key, prefix or start/end",
    required: "a watch needs a key, a prefix or a range (start/end)",
  });
  // An empty start is the first key; an open end, past the last.
  return { start: range.start ?? "", end: range.end, startRevision, prevValue };
}

export function toWatchResponse(batch: WatchBatch): WatchResponse {
  return {
    revision: batch.revision,
    events: batch.events.map((event) => ({
      type: event.type === "put" ? WatchEvent_Type.PUT : WatchEvent_Type.DELETE,
      record: {
        key: event.key,
        value: event.value,
        modRevision: event.revision,
        createRevision: event.createRevision,
        version: event.version,
        ttlMs: 0,
      },
      prevValue: event.prevValue,
    })),
  };
}
