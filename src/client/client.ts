import {
  type CallOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  connectivityState,
  credentials,
  Metadata,
  type ServiceError,
  status as Status,
} from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";
import {
  type CheckpointResponse,
  type ClusterChangeResponse,
  type ClusterStatusResponse,
  type CompactResponse,
  type DeepPartial,
  type DelResponse,
  GetRequest,
  type GetResponse,
  HomeKvServiceClient,
  type MembersResponse,
  type Metrics,
  type MetricsResponse,
  type Record as ProtoRecord,
  type WatchEvent as ProtoWatchEvent,
  ScanRequest,
  type ScanResponse,
  SetRequest,
  type SetResponse,
  TxnRequest,
  type TxnResponse,
  WatchEvent_Type,
  WatchRequest,
  type WatchResponse,
} from "../gen/homekv_service.ts";
import { tlsChannel } from "./tls-channel.ts";

export interface ClientOptions {
  /** `host:port`; IPv6 hosts in brackets. */
  address: string;
  /** Deadline of each call, connecting included, so that an unreachable server never hangs a caller. */
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
  /** The name the server's certificate must carry (default: the host of `address`). */
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

/** A call the server answered with an error status. */
export class HomeKvRpcError extends Error {
  override readonly name = "HomeKvRpcError";
  constructor(
    readonly code: Status,
    readonly details: string,
  ) {
    super(`${Status[code]}: ${details}`);
  }
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
 * server refuses the call, or with a `HomeKvError` coded `E_UNREACHABLE` when it cannot be reached.
 */
export class HomeKvClient {
  readonly address: string;
  private readonly stub: HomeKvServiceClient;
  private readonly timeoutMs: number;
  /** Sent with every call: the token, if any. */
  private readonly metadata: Metadata;

  constructor(options: ClientOptions) {
    this.address = options.address;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.metadata = new Metadata();
    if (options.token !== undefined) this.metadata.set("authorization", `Bearer ${options.token}`);
    const { channelCredentials, channelOptions } = options.tls
      ? tlsChannel(options.address, options.tls)
      : { channelCredentials: credentials.createInsecure(), channelOptions: {} };
    this.stub = new HomeKvServiceClient(options.address, channelCredentials, {
      // The server enforces its own limits and says which; the client adds none of its own.
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      ...channelOptions,
    });
  }

  /** Reads keys from one snapshot: the latest, or `revision` while it is not compacted. */
  async get(keys: readonly string[], options: { revision?: number; withTtl?: boolean } = {}): Promise<GetResult> {
    const request = GetRequest.fromPartial({
      keys: [...keys],
      revision: options.revision ?? 0,
      withTtl: options.withTtl ?? false,
    });
    const response = await this.call<GetResponse>((cb, md, opts) => this.stub.get(request, md, opts, cb));
    return { records: response.records.map(fromProto), revision: response.revision };
  }

  /** Writes all entries atomically at one revision; `ttlMs` gives every written key a time to live. */
  async set(
    entries: Iterable<readonly [string, ValueInput]> | Record<string, ValueInput>,
    options: { ttlMs?: number } = {},
  ): Promise<WriteResult> {
    const pairs = Symbol.iterator in entries ? [...entries] : Object.entries(entries);
    const records = pairs.map(([key, value]) => ({
      key,
      value: toBytes(value),
      ttlMs: value === null ? 0 : (options.ttlMs ?? 0),
    }));
    const request = SetRequest.fromPartial({ records });
    const response = await this.call<SetResponse>((cb, md, opts) => this.stub.set(request, md, opts, cb));
    return { revision: response.revision };
  }

  /** One page of a scan; pass `continuation` from the last page to get the next. */
  async scanPage(options: ScanOptions & { continuation?: string } = {}): Promise<ScanPage> {
    const request = ScanRequest.fromPartial({ ...options, continuation: options.continuation ?? "" });
    const response = await this.call<ScanResponse>((cb, md, opts) => this.stub.scan(request, md, opts, cb));
    return {
      records: response.records.map(fromProto),
      revision: response.revision,
      continuation: response.continuation,
    };
  }

  /** Every record of a scan, page by page, all read at the revision of the first page. */
  async *scan(options: ScanOptions = {}): AsyncGenerator<KeyRecord> {
    let page = await this.scanPage(options);
    for (;;) {
      yield* page.records;
      if (page.continuation === "") return;
      page = await this.scanPage({ continuation: page.continuation, limit: options.limit });
    }
  }

  /**
   * Compares, then the success or the failure operations, atomically. Build requests with the
   * generated TxnRequest/Compare/TxnOp types; `records` holds what the get operations read.
   */
  async txn(request: DeepPartial<TxnRequest>): Promise<{ succeeded: boolean; revision: number; records: KeyRecord[] }> {
    const message = TxnRequest.fromPartial(request);
    const response = await this.call<TxnResponse>((cb, md, opts) => this.stub.txn(message, md, opts, cb));
    return { succeeded: response.succeeded, revision: response.revision, records: response.records.map(fromProto) };
  }

  /** Makes revisions below `revision` unreadable. */
  async compact(revision: number): Promise<CompactResponse> {
    return this.call<CompactResponse>((cb, md, opts) => this.stub.compact({ revision }, md, opts, cb));
  }

  /** Deletes all keys atomically at one revision; missing keys are fine. */
  async del(keys: readonly string[]): Promise<DelResult> {
    const response = await this.call<DelResponse>((cb, md, opts) =>
      this.stub.del({ keys: [...keys], requestId: "" }, md, opts, cb),
    );
    return { revision: response.revision, deleted: response.deleted };
  }

  async metrics(): Promise<Metrics> {
    const response = await this.call<MetricsResponse>((cb, md, opts) => this.stub.metrics({}, md, opts, cb));
    if (!response.metrics) throw new HomeKvRpcError(Status.INTERNAL, "metrics missing from the response");
    return response.metrics;
  }

  /** The cluster as the server sees it through gossip (itself alone without --gossip-port). */
  async members(): Promise<MembersResponse> {
    return this.call<MembersResponse>((cb, md, opts) => this.stub.members({}, md, opts, cb));
  }

  /** The replicated group as this member knows it: every member's role, addresses, indexes and lag. */
  async clusterStatus(): Promise<ClusterStatusResponse> {
    return this.call<ClusterStatusResponse>((cb, md, opts) => this.stub.clusterStatus({}, md, opts, cb));
  }

  /** Adds a member as a learner (the leader promotes it once caught up); answers with the members after. */
  async clusterAdd(nodeId: string, peerAddress: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>((cb, md, opts) =>
        this.stub.clusterAdd({ nodeId, peerAddress }, md, opts, cb),
      ),
    );
  }

  /** Removes a member; refused when the voters left could not form a quorum. */
  async clusterRemove(nodeId: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>((cb, md, opts) => this.stub.clusterRemove({ nodeId }, md, opts, cb)),
    );
  }

  /** Hands leadership to the voter named; resolves once it leads. */
  async clusterTransferLeader(nodeId: string): Promise<ClusterStatusResponse> {
    return changed(
      await this.call<ClusterChangeResponse>((cb, md, opts) =>
        this.stub.clusterTransferLeader({ nodeId }, md, opts, cb),
      ),
    );
  }

  /** Asks the server to write a checkpoint now; resolves when it is on disk. */
  async checkpoint(): Promise<CheckpointResponse> {
    return this.call<CheckpointResponse>((cb, md, opts) => this.stub.checkpoint({}, md, opts, cb));
  }

  /**
   * The changes to a key, a prefix or a range, in revision order, until the loop stops or `signal`
   * aborts (both end the call quietly). Throws `HomeKvRpcError` when the server ends the watch:
   * OUT_OF_RANGE for a compacted start revision, RESOURCE_EXHAUSTED for a watcher that fell behind,
   * UNAVAILABLE for a server that stops; the message says from which revision to watch again.
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
    // Connecting is bounded like every call; the stream itself has no deadline.
    await new Promise<void>((resolve, reject) =>
      this.stub.waitForReady(Date.now() + this.timeoutMs, (error) =>
        error
          ? reject(
              new HomeKvError(
                "E_UNREACHABLE",
                `cannot reach HomeKV at ${this.address}: no connection before the deadline`,
              ),
            )
          : resolve(),
      ),
    );
    const call: ClientReadableStream<WatchResponse> = this.stub.watch(request, this.metadata.clone(), {});
    const abort = () => call.cancel();
    signal?.addEventListener("abort", abort, { once: true });
    try {
      for await (const response of call as AsyncIterable<WatchResponse>) {
        for (const event of response.events) yield fromWatchEvent(event);
      }
    } catch (error) {
      if (signal?.aborted) return;
      // The server was reached (waitForReady): a status is its answer, or a dropped connection.
      throw isServiceError(error) ? new HomeKvRpcError(error.code, error.details) : error;
    } finally {
      signal?.removeEventListener("abort", abort);
      call.cancel();
    }
  }

  close(): void {
    this.stub.close();
  }

  private call<T>(
    start: (
      callback: (error: ServiceError | null, response: T) => void,
      metadata: Metadata,
      options: Partial<CallOptions>,
    ) => ClientUnaryCall,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const options = { deadline: Date.now() + this.timeoutMs };
      start(
        (error, response) => (error ? reject(this.toError(error)) : resolve(response)),
        this.metadata.clone(),
        options,
      );
    });
  }

  private toError(error: ServiceError): Error {
    const connected = this.stub.getChannel().getConnectivityState(false) === connectivityState.READY;
    if (!connected && (error.code === Status.UNAVAILABLE || error.code === Status.DEADLINE_EXCEEDED)) {
      return new HomeKvError("E_UNREACHABLE", `cannot reach HomeKV at ${this.address}: ${unreachableReason(error)}`);
    }
    return new HomeKvRpcError(error.code, error.details);
  }
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

/** What went wrong while connecting, from grpc-js's "No connection established. Last error: …" text. */
const CONNECT_FAILURES: readonly [RegExp, string][] = [
  [/ECONNREFUSED/, "connection refused (is homekv serve running there?)"],
  [
    /WRONG_VERSION_NUMBER|packet length too long/i,
    "TLS handshake failed: the server does not speak TLS (connect without --tls / --tls-ca)",
  ],
  [/certificate has expired|CERT_HAS_EXPIRED/i, "the server's TLS certificate has expired"],
  [/certificate is not yet valid/i, "the server's TLS certificate is not valid yet"],
  [
    /unable to verify|self[- ]signed|local issuer|UNABLE_TO_GET_ISSUER/i,
    "the server's TLS certificate is not signed by a CA this client trusts (--tls-ca)",
  ],
  [
    /ALTNAME_INVALID|does not match certificate/i,
    "the server's TLS certificate is not valid for this host name (--tls-server-name checks another)",
  ],
  [/CERTIFICATE_REQUIRED/i, "the server requires a client certificate (--tls-cert and --tls-key)"],
  [
    /Failed to connect/,
    "the server closed the connection during setup (does it expect TLS, or a client certificate it trusts?)",
  ],
];

function unreachableReason(error: ServiceError): string {
  if (error.code === Status.DEADLINE_EXCEEDED) return "no answer before the deadline";
  const known = CONNECT_FAILURES.find(([pattern]) => pattern.test(error.details));
  if (known) return known[1];
  const last = /Last error: (?:Error(?: \[\w+\])?: )?(.*?)(?: \(\d{4}-[^)]*\))?\. Resolution note/.exec(
    error.details,
  )?.[1];
  return last ?? /(E[A-Z]{3,})\b/.exec(error.details)?.[1] ?? error.details;
}

function changed(response: ClusterChangeResponse): ClusterStatusResponse {
  if (!response.status) throw new HomeKvRpcError(Status.INTERNAL, "the members are missing from the response");
  return response.status;
}
