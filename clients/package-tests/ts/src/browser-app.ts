// A browser program: the root entry point and "@govss/vss-client/web" only, type-checked
// the way a bundler (Vite, esbuild) resolves packages, without Node's types (the encrypted
// store included: it needs nothing of Node).
import { Code, ConnectError } from "@connectrpc/connect";
import {
  EncryptedStore,
  LdkStore,
  VerificationError,
  keysFromWalletSeed,
  CursorExpiredError,
  ErrorCode,
  LnurlAuth,
  vssErrorCode,
  watchChanges,
  exportData,
  importData,
  deleteStore,
  type Change,
  type ImportResult,
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

/**
 * readPrivately reads key of storeId through an encrypted store with the keys of a wallet
 * seed, and says so when the server's answer fails verification.
 */
export async function readPrivately(vss: VssClient, walletSeed: Uint8Array, storeId: string, key: string): Promise<string> {
  const store = new EncryptedStore(vss, keysFromWalletSeed(walletSeed));
  try {
    return new TextDecoder().decode((await store.get(storeId, key)).value);
  } catch (err) {
    if (err instanceof VerificationError) {
      return `the server's answer for ${err.storageKey} failed verification (${err.kind})`;
    }
    throw err;
  }
}

/** ldkNamespaces lists the namespaces of an LDK Node wallet's store, without writing to it. */
export async function ldkNamespaces(vss: VssClient, walletSeed: string, storeId: string): Promise<string[]> {
  const ldk = await LdkStore.open(vss, keysFromWalletSeed(walletSeed), storeId, { readOnly: true });
  return (await ldk.listNamespaces()).map((ns) => `${ldk.schema} ${ns.primaryNamespace}/${ns.secondaryNamespace}: ${ns.keys.length}`);
}

/**
 * moveWallet downloads the user's dump from one server as a Blob and imports the file a
 * user picked into another, resumable under an id derived from the file.
 */
export async function moveWallet(from: VssClient, to: VssClient, picked: File, signal: AbortSignal): Promise<[Blob, ImportResult]> {
  const dump = await exportData(from, { signal }).toBlob();
  const result = await importData(to, picked, { importId: `file-${picked.size}-${picked.lastModified}`, signal, onProgress: (p) => console.log(p.bytes, p.totalBytes) });
  await deleteStore(from, "wallet", { dryRun: true });
  return [dump, result];
}
