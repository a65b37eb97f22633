import { type CallOptions, type ClientUnaryCall, connectivityState, credentials, Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { HomeKvError } from "../errors.ts";
import {
  type CheckpointResponse,
  type DelResponse,
  type GetResponse,
  HomeKvServiceClient,
  type Metrics,
  type MetricsResponse,
  type SetResponse,
} from "../gen/homekv_service.ts";

export interface ClientOptions {
  /** `host:port`; IPv6 hosts in brackets. */
  address: string;
  /** Deadline of each call, connecting included, so that an unreachable server never hangs a caller. */
  timeoutMs?: number;
}

export interface GetResult {
  /** One entry per requested key, in request order; `value` is undefined for a missing key. */
  records: { key: string; value: Uint8Array | undefined }[];
  /** The revision every value was read at. */
  revision: number;
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

/**
 * A typed, promise-based client for HomeKV. Every method rejects with `HomeKvRpcError` when the
 * server refuses the call, or with a `HomeKvError` coded `E_UNREACHABLE` when it cannot be reached.
 */
export class HomeKvClient {
  readonly address: string;
  private readonly stub: HomeKvServiceClient;
  private readonly timeoutMs: number;

  constructor(options: ClientOptions) {
    this.address = options.address;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.stub = new HomeKvServiceClient(options.address, credentials.createInsecure(), {
      // The server enforces its own limits and says which; the client adds none of its own.
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
    });
  }

  async get(keys: readonly string[]): Promise<GetResult> {
    const response = await this.call<GetResponse>((cb, md, opts) => this.stub.get({ keys: [...keys] }, md, opts, cb));
    return { records: response.records.map(({ key, value }) => ({ key, value })), revision: response.revision };
  }

  /** Writes all entries atomically at one revision. */
  async set(entries: Iterable<readonly [string, ValueInput]> | Record<string, ValueInput>): Promise<WriteResult> {
    const pairs = Symbol.iterator in entries ? [...entries] : Object.entries(entries);
    const records = pairs.map(([key, value]) => ({
      key,
      value: value === null ? undefined : typeof value === "string" ? encoder.encode(value) : value,
    }));
    const response = await this.call<SetResponse>((cb, md, opts) => this.stub.set({ records }, md, opts, cb));
    return { revision: response.revision };
  }

  /** Deletes all keys atomically at one revision; missing keys are fine. */
  async del(keys: readonly string[]): Promise<DelResult> {
    const response = await this.call<DelResponse>((cb, md, opts) => this.stub.del({ keys: [...keys] }, md, opts, cb));
    return { revision: response.revision, deleted: response.deleted };
  }

  async metrics(): Promise<Metrics> {
    const response = await this.call<MetricsResponse>((cb, md, opts) => this.stub.metrics({}, md, opts, cb));
    if (!response.metrics) throw new HomeKvRpcError(Status.INTERNAL, "metrics missing from the response");
    return response.metrics;
  }

  /** Asks the server to write a checkpoint now; resolves when it is on disk. */
  async checkpoint(): Promise<CheckpointResponse> {
    return this.call<CheckpointResponse>((cb, md, opts) => this.stub.checkpoint({}, md, opts, cb));
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
        new Metadata(),
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

function unreachableReason(error: ServiceError): string {
  if (error.code === Status.DEADLINE_EXCEEDED) return "no answer before the deadline";
  const syscall = /(E[A-Z]+)/.exec(error.details)?.[1];
  if (syscall === "ECONNREFUSED") return "connection refused (is homekv serve running there?)";
  return syscall ?? error.details;
}
