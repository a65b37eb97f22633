import { Metadata, status as Status } from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";
import {
  type BackupResponse,
  type CheckpointResponse,
  type ClusterChangeResponse,
  type ClusterStatusResponse,
  type CompactResponse,
  type DeepPartial,
  type DelResponse,
  GetRequest,
  type GetResponse,
  type MembersResponse,
  type Metrics,
  type MetricsResponse,
  type Record as ProtoRecord,
  type RingResponse,
  ScanRequest,
  type ScanResponse,
  SetRequest,
  type SetResponse,
  TxnRequest,
  type TxnResponse,
  WatchRequest,
} from "../gen/homekv_service.ts";
import { type Endpoint, openEndpoint } from "./endpoint.ts";
import { type CallKind, callWithFailover, type StartCall } from "./failover.ts";
import { HomeKvRpcError } from "./rpc-error.ts";
import { resumeWatch, watchOn } from "./watch.ts";

export { HomeKvRpcError } from "./rpc-error.ts";

export interface ClientOptions {
  /** `host:port`; IPv6 hosts in brackets. The same as `endpoints: [address]`. */
  address?: string;
  /**
   * The members of one cluster, `host:port` each. The client calls one at a time and moves on to
   * the next when it cannot be reached, does not answer in time or is unavailable; a write moves on
   * only when it is known not to have been applied (README, "Clients with many endpoints").
   */
  endpoints?: readonly string[];
  /**
   * Deadline of each call, connecting included and every endpoint it tries, so that an unreachable
   * server never hangs a caller.
   */
  timeoutMs?: number;
  /** Connect over TLS; `{}` trusts the system's CAs. */
  tls?: ClientTls;
  /** Sent as `authorization: Bearer TOKEN` with every call, for a server that requires tokens. */
  token?: string;
}

/** PEM contents. */
export interface ClientTls {
  /** The CA the server's certificate must chain to (default: the system's). */
  ca?: Buffer;
  /** This client's certificate and key, for a server that requires mutual TLS. */
  cert?: Buffer;
  key?: Buffer;
  /** The name every server's certificate must carry (default: the host of its endpoint). */
  serverName?: string;
}

/** A key as the server returns it: `value` undefined for a missing key; revisions 0 then. */
export interface KeyRecord {
  key: string;
  value: Uint8Array | undefined;
  modRevision: number;
  createRevision: number;
  version: number;
  /** Milliseconds left to live, when asked for and the key has a TTL; else 0. */
  ttlMs: number;
}

export interface GetResult {
  /** One entry per requested key, in request order. */
  records: KeyRecord[];
  /** The revision every value was read at. */
  revision: number;
}

export interface ScanOptions {
  /** [start, end): empty start is the first key, empty end past the last. Or `prefix`. */
  start?: string;
  end?: string;
  prefix?: string;
  /** Records per page (the server's default: 100). */
  limit?: number;
  reverse?: boolean;
  keysOnly?: boolean;
  /** Read at this revision (default: the latest). */
  revision?: number;
  /** In a cluster: read the member's own state without confirming it with the leader (may be stale). */
  serializable?: boolean;
}

export interface ScanPage {
  records: KeyRecord[];
  revision: number;
  /** Pass to `scanPage` for the next page; empty when the scan is complete. */
  continuation: string;
}

export interface WriteResult {
  revision: number;
}

export interface DelResult extends WriteResult {
  /** How many of the keys existed. */
  deleted: number;
}

/** A value to write: bytes, a string (written as UTF-8), or null to delete the key. */
export type ValueInput = Uint8Array | string | null;

/** What to watch: exactly one of a key, a prefix or a range [start, end) (either end may be open). */
export interface WatchOptions {
  key?: string;
  prefix?: string;
  start?: string;
  end?: string;
  /** Send changes from this revision on (default: from the next commit). */
  startRevision?: number;
  /** Send each change's previous value too. */
  prevValue?: boolean;
}

/** One change seen by a watch. */
export interface WatchEvent {
  type: "put" | "delete";
  key: string;
  /** Undefined for a delete. */
  value: Uint8Array | undefined;
  revision: number;
  /** The key's create revision and version after the change (0 for a delete). */
  createRevision: number;
  version: number;
  /** With `prevValue`: the value before the change; undefined when the key did not exist. */
  prevValue?: Uint8Array;
}

/** A write's request id: a server applies a write with an id it has applied already no second time. */
export interface WriteOptions {
  requestId?: string;
}

const encoder = new TextEncoder();

function toBytes(value: ValueInput): Uint8Array | undefined {
  return value === null ? undefined : typeof value === "string" ? encoder.encode(value) : value;
}

function fromProto(record: ProtoRecord): KeyRecord {
  const { key, value, modRevision, createRevision, version, ttlMs } = record;
  return { key, value, modRevision, createRevision, version, ttlMs };
}

/**
 * A typed, promise-based client for HomeKV. Every method rejects with `HomeKvRpcError` when the
 * server refuses the call, or with a `HomeKvError` coded `E_UNREACHABLE` when no endpoint can be
 * reached. A write that was sent and then not answered rejects with UNAVAILABLE "outcome unknown:"
 * (`error.outcomeUnknown`), unless it carries a request id: then it is sent again to the next
 * endpoint, which applies it only if no server did.
 */
export class HomeKvClient {
  readonly endpoints: readonly string[];
  private readonly channels: readonly Endpoint[];
  /** The endpoint calls go to first: the last one that answered. */
  private current = 0;
  private readonly timeoutMs: number;
  /** Sent with every call: the token, if any. */
  private readonly metadata: Metadata;

  constructor(options: ClientOptions) {
    this.endpoints = endpointsOf(options);
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.metadata = new Metadata();
    if (options.token !== undefined) this.metadata.set("authorization", `Bearer ${options.token}`);
    this.channels = this.endpoints.map((address) => openEndpoint(address, options.tls));
  }

  /** The endpoint calls go to first now. */
  get address(): string {
    return this.channels[this.current]!.address;
  }

  /**
   * Reads keys from one snapshot: the latest, or `revision` while it is not compacted. In a cluster
   * the read is linearizable unless `serializable` (the member's own state, without confirming it
   * with the leader: faster, possibly stale).
   */
  async get(
    keys: readonly string[],
    options: { revision?: number; withTtl?: boolean; serializable?: boolean } = {},
  ): Promise<GetResult> {
    const request = GetRequest.fromPartial({
      keys: [...keys],
      revision: options.revision ?? 0,
      withTtl: options.withTtl ?? false,
      serializable: options.serializable ?? false,
    });
    const response = await this.call<GetResponse>("read", (stub, cb, md, opts) => stub.get(request, md, opts, cb));
    return { records: response.records.map(fromProto), revision: response.revision };
  }

  /** Writes all entries atomically at one revision; `ttlMs` gives every written key a time to live. */
  async set(
    entries: Iterable<readonly [string, ValueInput]> | Record<string, ValueInput>,
    options: { ttlMs?: number } & WriteOptions = {},
  ): Promise<WriteResult> {
    const pairs = Symbol.iterator in entries ? [...entries] : Object.entries(entries);
    const records = pairs.map(([key, value]) => ({
      key,
      value: toBytes(value),
      ttlMs: value === null ? 0 : (options.ttlMs ?? 0),
    }));
    const request = SetRequest.fromPartial({ records, requestId: options.requestId ?? "" });
    const response = await this.call<SetResponse>(
      writeKind(request.requestId),
      (stub, cb, md, opts) => stub.set(request, md, opts, cb),
      request.requestId,
    );
    return { revision: response.revision };
  }

  /**
   * One page of a scan; pass `continuation` from the last page to get the next. A continuation is
   * known only to the server that gave it: later pages go to the endpoint of the moment alone.
   */
  async scanPage(options: ScanOptions & { continuation?: string } = {}): Promise<ScanPage> {
    const endpoints = options.continuation ? [this.channels[this.current]!] : this.rotation();
    return (await this.scanOn(endpoints, options)).page;
  }

  /** Every record of a scan, page by page, all read at the revision of the first page, from its server. */
  async *scan(options: ScanOptions = {}): AsyncGenerator<KeyRecord> {
    let { page, endpoint } = await this.scanOn(this.rotation(), options);
    for (;;) {
      yield* page.records;
      if (page.continuation === "") return;
      ({ page } = await this.scanOn([endpoint], { continuation: page.continuation, limit: options.limit }));
    }
  }

  /**
   * Compares, then the success or the failure operations, atomically. Build requests with the
   * generated TxnRequest/Compare/TxnOp types; `records` holds what the get operations read. A
   * transaction that only reads may go to any endpoint; one that writes is a write.
   */
  async txn(
    request: DeepPartial<TxnRequest>,
    options: WriteOptions = {},
  ): Promise<{ succeeded: boolean; revision: number; records: KeyRecord[] }> {
    const message = TxnRequest.fromPartial({ ...request, requestId: options.requestId ?? request.requestId ?? "" });
    const writes = [...message.success, ...message.failure].some(({ op }) => op?.$case !== "get");
    const response = await this.call<TxnResponse>(
      writes ? writeKind(message.requestId) : "read",
      (stub, cb, md, opts) => stub.txn(message, md, opts, cb),
      message.requestId,
    );
    return { succeeded: response.succeeded, revision: response.revision, records: response.records.map(fromProto) };
  }

  /** Makes revisions below `revision` unreadable. */
  async compact(revision: number): Promise<CompactResponse> {
    return this.call<CompactResponse>("write", (stub, cb, md, opts) => stub.compact({ revision }, md, opts, cb));
  }

  /** Deletes all keys atomically at one revision; missing keys are fine. */
  async del(keys: readonly string[], options: WriteOptions = {}): Promise<DelResult> {
    const requestId = options.requestId ?? "";
    const response = await this.call<DelResponse>(
      writeKind(requestId),
      (stub, cb, md, opts) => stub.del({ keys: [...keys], requestId }, md, opts, cb),
      requestId,
    );
    return { revision: response.revision, deleted: response.deleted };
  }

  async metrics(): Promise<Metrics> {
    const response = await this.call<MetricsResponse>("read", (stub, cb, md, opts) => stub.metrics({}, md, opts, cb));
    if (!response.metrics) throw new HomeKvRpcError(Status.INTERNAL, "metrics missing from the response");
    return response.metrics;
  }

  /** The cluster as the server sees it through gossip (itself alone without --gossip-port). */
  async members(): Promise<MembersResponse> {
    return this.call<MembersResponse>("read", (stub, cb, md, opts) => stub.members({}, md, opts, cb));
  }

  /** The replicated group as this member knows it: every member's role, addresses, indexes and lag. */
  async clusterStatus(): Promise<ClusterStatusResponse> {
    return this.call<ClusterStatusResponse>("read", (stub, cb, md, opts) => stub.clusterStatus({}, md, opts, cb));
  }

  /** The partitions of a partitioned cluster: each one's replicas and leader (as the answering node knows it), each node's share. */
  async ring(): Promise<RingResponse> {
    return this.call<RingResponse>("read", (stub, cb, md, opts) => stub.ring({}, md, opts, cb));
  }

  /** Adds a member as a learner (the leader promotes it once caught up); answers with the members after. */
  async clusterAdd(nodeId: string, peerAddress: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>("write", (stub, cb, md, opts) =>
        stub.clusterAdd({ nodeId, peerAddress }, md, opts, cb),
      ),
    );
  }

  /** Removes a member; refused when the voters left could not form a quorum. */
  async clusterRemove(nodeId: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>("write", (stub, cb, md, opts) =>
        stub.clusterRemove({ nodeId }, md, opts, cb),
      ),
    );
  }

  /** Hands leadership to the voter named; resolves once it leads. */
  async clusterTransferLeader(nodeId: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>("write", (stub, cb, md, opts) =>
        stub.clusterTransferLeader({ nodeId }, md, opts, cb),
      ),
    );
  }

  /**
   * Asks the server to write a checkpoint now; resolves when it is on disk. A cluster member first
   * catches up with what its groups committed, unless `serializable` (CheckpointRequest).
   */
  async checkpoint(options: { serializable?: boolean } = {}): Promise<CheckpointResponse> {
    const request = { serializable: options.serializable ?? false };
    return this.call<CheckpointResponse>("write", (stub, cb, md, opts) => stub.checkpoint(request, md, opts, cb));
  }

  /**
   * Asks the server to write a backup of its store as a new data directory `dir` on its own machine
   * (an absolute path that does not exist yet); resolves once the backup is complete and synced.
   */
  async backup(dir: string): Promise<BackupResponse> {
    return this.call<BackupResponse>("write", (stub, cb, md, opts) => stub.backup({ dir }, md, opts, cb));
  }

  /**
   * The changes to a key, a prefix or a range, in revision order, until the loop stops or `signal`
   * aborts (both end the call quietly). Throws `HomeKvRpcError` when the server ends the watch:
   * OUT_OF_RANGE for a compacted start revision, RESOURCE_EXHAUSTED for a watcher that fell behind,
   * UNAVAILABLE for a server that stops; the message says from which revision to watch again. With
   * several endpoints, a watch whose server stops or goes away goes on from the next endpoint,
   * where it left off.
   */
  async *watch(options: WatchOptions, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    const request = WatchRequest.fromPartial({
      key: options.key ?? "",
      prefix: options.prefix ?? "",
      start: options.start ?? "",
      end: options.end ?? "",
      startRevision: options.startRevision ?? 0,
      prevValue: options.prevValue ?? false,
    });
    if (signal?.aborted) return;
    // "From the next commit" is pinned to a revision first, so that a watch that moves to another
    // endpoint knows where it was.
    const startRevision =
      request.startRevision === 0 && this.channels.length > 1
        ? (await this.get([])).revision + 1
        : request.startRevision;
    yield* resumeWatch({
      startRevision,
      attemptsMax: this.channels.length,
      open: (from) =>
        watchOn(
          this.channels[this.current]!,
          { ...request, startRevision: from },
          this.metadata,
          this.timeoutMs,
          signal,
        ),
      failOver: () => {
        this.current = (this.current + 1) % this.channels.length;
      },
    });
  }

  close(): void {
    for (const { stub } of this.channels) stub.close();
  }

  /** The endpoints in the order a call tries them: the current one first. */
  private rotation(): Endpoint[] {
    return [...this.channels.slice(this.current), ...this.channels.slice(0, this.current)];
  }

  private async scanOn(
    endpoints: readonly Endpoint[],
    options: ScanOptions & { continuation?: string },
  ): Promise<{ page: ScanPage; endpoint: Endpoint }> {
    const request = ScanRequest.fromPartial({ ...options, continuation: options.continuation ?? "" });
    const { response, endpoint } = await this.callOn<ScanResponse>(endpoints, "read", (stub, cb, md, opts) =>
      stub.scan(request, md, opts, cb),
    );
    const page = {
      records: response.records.map(fromProto),
      revision: response.revision,
      continuation: response.continuation,
    };
    return { page, endpoint };
  }

  private async call<T>(kind: CallKind, start: StartCall<T>, requestId?: string): Promise<T> {
    return (await this.callOn(this.rotation(), kind, start, requestId)).response;
  }

  private async callOn<T>(
    endpoints: readonly Endpoint[],
    kind: CallKind,
    start: StartCall<T>,
    requestId?: string,
  ): Promise<{ response: T; endpoint: Endpoint }> {
    const answered = await callWithFailover({
      kind,
      endpoints,
      timeoutMs: this.timeoutMs,
      metadata: this.metadata,
      start,
      ...(requestId ? { requestId } : {}),
    });
    this.current = this.channels.indexOf(answered.endpoint);
    return answered;
  }
}

/** A write with a request id may be sent again; one without, only when it was not applied. */
function writeKind(requestId: string): CallKind {
  return requestId === "" ? "write" : "write-once";
}

function endpointsOf(options: ClientOptions): string[] {
  if ((options.address === undefined) === (options.endpoints === undefined))
    throw new HomeKvError("E_INVALID", "a client needs either an address or endpoints");
  const endpoints = options.endpoints ? [...options.endpoints] : [options.address!];
  if (endpoints.length === 0) throw new HomeKvError("E_INVALID", "a client needs at least one endpoint");
  const repeated = endpoints.find((address, i) => endpoints.indexOf(address) !== i);
  if (repeated !== undefined) throw new HomeKvError("E_INVALID", `endpoint ${repeated} is listed twice`);
  return endpoints;
}

function changed(response: ClusterChangeResponse): ClusterStatusResponse {
  if (!response.status) throw new HomeKvRpcError(Status.INTERNAL, "the members are missing from the response");
  return response.status;
}
