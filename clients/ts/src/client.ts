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
  /**
   * deviceId names this device in every write (PutObjects, DeleteObject) through the
   * vss-device-id header: 1 to 120 printable ASCII characters. The change feed carries
   * it with each change the write makes, so that a device recognises its own writes.
   */
  deviceId?: string;
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
 * authentication first, then the device id, then the caller's own.
 */
export function clientInterceptors(options: VssClientOptions): Interceptor[] {
  const interceptors: Interceptor[] = [];
  if (options.auth) {
    interceptors.push(authInterceptor(options.auth));
  }
  if (options.deviceId !== undefined) {
    interceptors.push(deviceIdInterceptor(options.deviceId));
  }
  return interceptors.concat(options.interceptors ?? []);
}

/** DEVICE_ID_HEADER names the writing device of a PutObjects or DeleteObject. */
export const DEVICE_ID_HEADER = "vss-device-id";

/**
 * checkDeviceId throws unless deviceId is 1 to 120 printable ASCII characters, what
 * the server accepts in the vss-device-id header.
 */
export function checkDeviceId(deviceId: string): void {
  if (!/^[\x20-\x7e]{1,120}$/.test(deviceId)) {
    throw new Error("device id: want 1 to 120 printable ASCII characters");
  }
}

/**
 * deviceIdInterceptor returns an interceptor that names the writing device in every
 * PutObjects and DeleteObject (the vss-device-id header), unless the call's own headers
 * already do.
 */
export function deviceIdInterceptor(deviceId: string): Interceptor {
  checkDeviceId(deviceId);
  return (next) => async (req) => {
    if ((req.method.name === "PutObjects" || req.method.name === "DeleteObject") && !req.header.has(DEVICE_ID_HEADER)) {
      req.header.set(DEVICE_ID_HEADER, deviceId);
    }
    return next(req);
  };
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
