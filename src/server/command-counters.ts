import { ResponderBuilder, ServerInterceptingCall, type ServerInterceptor, status as Status } from "@grpc/grpc-js";

/** Get, Set and Del calls, counted as the original HomeKV counted them (`cmds_count`), and the newer key-value commands beside them. */
const COUNTED_METHODS = new Set(["Get", "Set", "Del", "Scan", "Txn", "Compact", "Watch"].map((name) => `/homekv_service.HomeKvService/${name}`));

export interface CommandCounters {
  served: number;
  rejected: number;
}

/**
 * A server interceptor that sees the final status of every call that reached a handler, so that
 * each counted command is counted exactly once however it ends.
 */
export function commandInterceptor(counters: CommandCounters): ServerInterceptor {
  return (method, call) => {
    if (!COUNTED_METHODS.has(method.path)) return new ServerInterceptingCall(call);
    return new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withSendStatus((status, next) => {
          if (status.code === Status.OK) counters.served++;
          else counters.rejected++;
          next(status);
        })
        .build(),
    );
  };
}
