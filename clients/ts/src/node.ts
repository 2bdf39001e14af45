import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { clientInterceptors, createVssClient, type VssClient, type VssClientOptions } from "./client.js";

/**
 * NodeVssClientOptions configure createNodeVssClient.
 */
export interface NodeVssClientOptions extends VssClientOptions {
  /**
   * protocol is "connect" (the default), "grpc" (always over HTTP/2) or "grpc-web".
   */
  protocol?: "connect" | "grpc" | "grpc-web";
  /**
   * httpVersion is "1.1" (the default for connect and grpc-web) or "2". Plain http://
   * URLs use HTTP/2 without TLS, which vss-server accepts.
   */
  httpVersion?: "1.1" | "2";
}

/**
 * createNodeVssClient returns a VssClient that calls the server at baseUrl (for example
 * "https://vss.example.com") with Node's http, https and http2 modules.
 */
export function createNodeVssClient(baseUrl: string, options: NodeVssClientOptions = {}): VssClient {
  const common = {
    baseUrl,
    useBinaryFormat: options.useBinaryFormat ?? true,
    interceptors: clientInterceptors(options),
  };
  switch (options.protocol ?? "connect") {
    case "grpc":
      return createVssClient(createGrpcTransport({ ...common, useBinaryFormat: true }));
    case "grpc-web":
      return createVssClient(createGrpcWebTransport({ ...common, httpVersion: options.httpVersion ?? "1.1" }));
    case "connect":
      return createVssClient(createConnectTransport({ ...common, httpVersion: options.httpVersion ?? "1.1" }));
  }
}
