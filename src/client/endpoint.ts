import { connectivityState, credentials } from "@grpc/grpc-js";
import { HomeKvServiceClient } from "../gen/homekv_service.ts";
import type { ClientTls } from "./client.ts";
import { tlsChannel } from "./tls-channel.ts";

/** One server a client may call: its address and a channel to it (which connects on first use). */
export interface Endpoint {
  readonly address: string;
  readonly stub: HomeKvServiceClient;
}

export function openEndpoint(address: string, tls: ClientTls | undefined): Endpoint {
  const { channelCredentials, channelOptions } = tls
    ? tlsChannel(address, tls)
    : { channelCredentials: credentials.createInsecure(), channelOptions: {} };
  const stub = new HomeKvServiceClient(address, channelCredentials, {
    // The server enforces its own limits and says which; the client adds none of its own.
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    ...channelOptions,
  });
  return { address, stub };
}

/**
 * Waits while the endpoint's channel is connecting: true once it is connected or has failed (a
 * call then fails at once, saying why), false if it is still connecting at `deadline` — a server
 * that accepts the connection but does not answer the handshake (stopped, overloaded), to which a
 * call would never have been sent.
 */
export function settleConnection(endpoint: Endpoint, deadline: number): Promise<boolean> {
  const channel = endpoint.stub.getChannel();
  return new Promise((resolve) => {
    // Bounded by the deadline: each turn waits for a change of state or the deadline.
    const check = () => {
      const state = channel.getConnectivityState(true);
      if (state !== connectivityState.IDLE && state !== connectivityState.CONNECTING) return resolve(true);
      if (Date.now() >= deadline) return resolve(false);
      channel.watchConnectivityState(state, deadline, (error) => (error ? resolve(false) : check()));
    };
    check();
  });
}
