import { ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { authInterceptor, type VssAuth } from "./auth.js";
import { ErrorCode, ErrorResponseSchema, VssService } from "./gen/vss/v1/vss_pb.js";

/**
 * VssClient is a typed client of vss.v1.VssService: getObject, putObjects, deleteObject
 * and listKeyVersions.
 */
export type VssClient = Client<typeof VssService>;

/**
 * VssClientOptions configure the clients that createWebVssClient and createNodeVssClient
 * return.
 */
export interface VssClientOptions {
  /** auth authenticates every request; without it requests carry no credentials. */
  auth?: VssAuth;
  /** interceptors run around every request, after authentication is added. */
  interceptors?: Interceptor[];
  /**
   * useBinaryFormat selects binary protobuf (the default) over JSON for the Connect and
   * gRPC-Web protocols.
   */
  useBinaryFormat?: boolean;
}

/**
 * createVssClient returns a VssClient that sends its requests through transport. Use
 * createWebVssClient or createNodeVssClient for a transport with authentication set up.
 */
export function createVssClient(transport: Transport): VssClient {
  return createClient(VssService, transport);
}

/**
 * clientInterceptors returns the interceptors a client built from options uses:
 * authentication first, then the caller's own.
 */
export function clientInterceptors(options: VssClientOptions): Interceptor[] {
  const interceptors: Interceptor[] = [];
  if (options.auth) {
    interceptors.push(authInterceptor(options.auth));
  }
  return interceptors.concat(options.interceptors ?? []);
}

/**
 * vssErrorCode returns the VSS error code a failed call carries (for example
 * ErrorCode.CONFLICT_EXCEPTION for a version conflict), or undefined when err is not a
 * Connect error or carries no VSS error detail.
 */
export function vssErrorCode(err: unknown): ErrorCode | undefined {
  if (!(err instanceof ConnectError)) {
    return undefined;
  }
  return err.findDetails(ErrorResponseSchema)[0]?.errorCode;
}
