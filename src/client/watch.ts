import { type ClientReadableStream, type Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { HomeKvError, isHomeKvError } from "../errors.ts";
import {
  type WatchEvent as ProtoWatchEvent,
  WatchEvent_Type,
  type WatchRequest,
  type WatchResponse,
} from "../gen/homekv_service.ts";
import type { WatchEvent } from "./client.ts";
import type { Endpoint } from "./endpoint.ts";
import { fromServiceError, HomeKvRpcError } from "./rpc-error.ts";

/**
 * One watch stream from one endpoint, until `signal` aborts (quietly) or the stream ends. Connecting
 * is bounded by `connectTimeoutMs`; the stream itself has no deadline.
 */
export async function* watchOn(
  endpoint: Endpoint,
  request: WatchRequest,
  metadata: Metadata,
  connectTimeoutMs: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<WatchEvent> {
  if (signal?.aborted) return;
  await new Promise<void>((resolve, reject) =>
    endpoint.stub.waitForReady(Date.now() + connectTimeoutMs, (error) =>
      error
        ? reject(
            new HomeKvError(
              "E_UNREACHABLE",
              `cannot reach HomeKV at ${endpoint.address}: no connection before the deadline`,
            ),
          )
        : resolve(),
    ),
  );
  const call: ClientReadableStream<WatchResponse> = endpoint.stub.watch(request, metadata.clone(), {});
  const abort = () => call.cancel();
  signal?.addEventListener("abort", abort, { once: true });
  try {
    for await (const response of call as AsyncIterable<WatchResponse>) {
      for (const event of response.events) yield fromWatchEvent(event);
    }
  } catch (error) {
    if (signal?.aborted) return;
    // The server was reached (waitForReady): a status is its answer, or a dropped connection.
    throw isServiceError(error) ? fromServiceError(error) : error;
  } finally {
    signal?.removeEventListener("abort", abort);
    call.cancel();
  }
}

export interface ResumeOptions {
  /** Where the watch starts (0: the next commit, for a client of one endpoint only). */
  startRevision: number;
  /** How many streams in a row may fail before any event arrives: the number of endpoints. */
  attemptsMax: number;
  /** Opens a stream from `startRevision` on the endpoint of the moment. */
  open: (startRevision: number) => AsyncIterable<WatchEvent>;
  /** Moves on to the next endpoint. */
  failOver: () => void;
}

/**
 * A watch that moves to the next endpoint when its server stops or cannot be reached, and resumes
 * at the revision of the last event it delivered, skipping the keys of that revision it delivered
 * already: a revision too large for one message comes in parts, and one cut off comes again whole.
 * It gives up after `attemptsMax` failures in a row without an event in between.
 */
export async function* resumeWatch(options: ResumeOptions): AsyncGenerator<WatchEvent> {
  let revision = options.startRevision;
  let delivered = new Set<string>();
  // Bounded: every failure counts, and only an event delivered resets the count.
  for (let failures = 0; ; ) {
    try {
      for await (const event of options.open(revision)) {
        if (event.revision === revision && delivered.has(event.key)) continue;
        if (event.revision !== revision) [revision, delivered] = [event.revision, new Set()];
        delivered.add(event.key);
        failures = 0;
        yield event;
      }
      return;
    } catch (error) {
      if (!mayResumeElsewhere(error) || ++failures >= options.attemptsMax) throw error;
      options.failOver();
    }
  }
}

function mayResumeElsewhere(error: unknown): boolean {
  return (
    isHomeKvError(error, "E_UNREACHABLE") || (error instanceof HomeKvRpcError && error.code === Status.UNAVAILABLE)
  );
}

function fromWatchEvent(event: ProtoWatchEvent): WatchEvent {
  const record = event.record;
  if (record === undefined) throw new HomeKvRpcError(Status.INTERNAL, "a watch event without its record");
  return {
    type: event.type === WatchEvent_Type.DELETE ? "delete" : "put",
    key: record.key,
    value: record.value,
    revision: record.modRevision,
    createRevision: record.createRevision,
    version: record.version,
    ...(event.prevValue === undefined ? {} : { prevValue: event.prevValue }),
  };
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}
