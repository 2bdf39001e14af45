import { ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { authInterceptor, type VssAuth } from "./auth.js";
import { ErrorCode, ErrorResponseSchema, VssService, type KeyValue, type ListKeyVersionsResponse } from "./gen/vss/v1/vss_pb.js";
import { DEFAULT_TIMEOUT_MS, retryInterceptor, type RetryPolicy } from "./retry.js";

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
  /**
   * retry says how idempotent calls are retried (see RetryPolicy); { maxAttempts: 1 }
   * turns retries off.
   */
  retry?: RetryPolicy;
  /**
   * timeoutMs bounds each attempt of a unary call (DEFAULT_TIMEOUT_MS, 30 s, as the Go
   * client); 0 turns the bound off. Streams are never bounded.
   */
  timeoutMs?: number;
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
 * retries and timeouts outermost (retryInterceptor), then authentication, then the
 * device id, then the caller's own, which therefore run once per attempt.
 */
export function clientInterceptors(options: VssClientOptions): Interceptor[] {
  const interceptors: Interceptor[] = [retryInterceptor(options.retry, options.timeoutMs ?? DEFAULT_TIMEOUT_MS)];
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

/** ListAllOptions select the keys listAllKeyVersions lists. */
export interface ListAllOptions {
  /** keyPrefix keeps only keys that start with it. */
  keyPrefix?: string;
  /** pageSize caps each page; the server caps it at 100. */
  pageSize?: number;
  /** signal cancels the listing. */
  signal?: AbortSignal;
}

/**
 * listKeyVersionPages pages through the keys of storeId with ListKeyVersions, following
 * the page tokens, and yields each page; the first carries the store's global version.
 */
export async function* listKeyVersionPages(
  client: VssClient,
  storeId: string,
  options: ListAllOptions = {},
): AsyncGenerator<ListKeyVersionsResponse, void, undefined> {
  const seen = new Set<string>();
  let pageToken: string | undefined;
  for (;;) {
    const page = await client.listKeyVersions(
      { storeId, keyPrefix: options.keyPrefix, pageSize: options.pageSize, pageToken },
      { signal: options.signal },
    );
    yield page;
    const next = page.nextPageToken ?? "";
    if (next === "") {
      return;
    }
    if (seen.has(next)) {
      throw new Error(`the server answered the page token ${JSON.stringify(next)} twice`);
    }
    seen.add(next);
    pageToken = next;
  }
}

/**
 * listAllKeyVersions lists every key of storeId (newest created first) with its version,
 * and the store's global version read before the first page: the Go client's ListAll.
 */
export async function listAllKeyVersions(
  client: VssClient,
  storeId: string,
  options: ListAllOptions = {},
): Promise<{ keyVersions: KeyValue[]; globalVersion: bigint }> {
  const keyVersions: KeyValue[] = [];
  let globalVersion: bigint | undefined;
  for await (const page of listKeyVersionPages(client, storeId, options)) {
    globalVersion ??= page.globalVersion ?? 0n;
    keyVersions.push(...page.keyVersions);
  }
  return { keyVersions, globalVersion: globalVersion ?? 0n };
}
