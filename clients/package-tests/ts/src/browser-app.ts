// A browser program: the root entry point and "@govss/vss-client/web" only, type-checked
// the way a bundler (Vite, esbuild) resolves packages, without Node's types.
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CursorExpiredError,
  ErrorCode,
  LnurlAuth,
  vssErrorCode,
  watchChanges,
  type Change,
  type LnurlAuthOptions,
  type VssClient,
  type WatchState,
} from "@govss/vss-client";
import { createWebVssClient, type WebVssClientOptions } from "@govss/vss-client/web";

/** putGreeting stores "hello" under key in storeId, and reports whether it already existed. */
export async function putGreeting(vss: VssClient, storeId: string, key: string): Promise<boolean> {
  try {
    await vss.putObjects({ storeId, transactionItems: [{ key, version: 0n, value: new TextEncoder().encode("hello") }] });
    return false;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.Aborted && vssErrorCode(err) === ErrorCode.CONFLICT_EXCEPTION) {
      return true;
    }
    throw err;
  }
}

/** browserClient is a client a page makes, with a bearer token fetched for each request. */
export function browserClient(baseUrl: string, token: () => Promise<string>): VssClient {
  const options: WebVssClientOptions = { auth: { bearerToken: token }, protocol: "grpc-web", useBinaryFormat: true, deviceId: "browser" };
  return createWebVssClient(baseUrl, options);
}

/**
 * lnurlClients are two clients a page makes that share one LNURL-auth login at the
 * server's issuer, with a linking key the wallet derives for the issuer's domain.
 */
export function lnurlClients(baseUrl: string, linkingKeyFor: (domain: string) => Promise<Uint8Array>): [VssClient, VssClient] {
  const options: LnurlAuthOptions = { url: baseUrl + "/auth/lnurl", linkingKeyFor, fetch: (input, init) => fetch(input, init) };
  const auth = new LnurlAuth(options);
  return [createWebVssClient(baseUrl, { auth: { lnurlAuth: auth } }), createWebVssClient(baseUrl, { auth: { lnurlAuth: options } })];
}

/**
 * showChanges follows storeId from cursor and hands each change to show, with the
 * watch's state, until signal aborts; it resolves to false when the store must be listed
 * again.
 */
export async function showChanges(
  vss: VssClient,
  storeId: string,
  cursor: string,
  signal: AbortSignal,
  show: (change: Change | undefined, state: WatchState) => void,
): Promise<boolean> {
  const watcher = watchChanges(vss, storeId, { cursor, signal, onStatus: (s) => show(undefined, s.state) });
  try {
    for await (const change of watcher) {
      show(change, watcher.state);
    }
    return true;
  } catch (err) {
    if (err instanceof CursorExpiredError) {
      return false;
    }
    throw err;
  }
}
