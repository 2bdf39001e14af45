import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { clientInterceptors, createVssClient, type VssClient, type VssClientOptions } from "./client.js";

/**
 * WebVssClientOptions configure createWebVssClient.
 */
export interface WebVssClientOptions extends VssClientOptions {
  /** protocol is "connect" (the default) or "grpc-web". */
  protocol?: "connect" | "grpc-web";
  /** fetch replaces globalThis.fetch, for example to add credentials or a timeout. */
  fetch?: typeof globalThis.fetch;
}

/**
 * createWebVssClient returns a VssClient that calls the server at baseUrl (for example
 * "https://vss.example.com") with the Fetch API, as browsers do. A page served from
 * another origin needs the server to allow that origin (vss-server --cors-origins).
 */
export function createWebVssClient(baseUrl: string, options: WebVssClientOptions = {}): VssClient {
  const transportOptions = {
    baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    interceptors: clientInterceptors(options),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  const transport =
    options.protocol === "grpc-web"
      ? createGrpcWebTransport(transportOptions)
      : createConnectTransport(transportOptions);
  return createVssClient(transport);
}
