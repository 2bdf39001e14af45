// A browser program: the root entry point and "@govss/vss-client/web" only, type-checked
// the way a bundler (Vite, esbuild) resolves packages, without Node's types.
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, vssErrorCode, type VssClient } from "@govss/vss-client";
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
  const options: WebVssClientOptions = { auth: { bearerToken: token }, protocol: "grpc-web", useBinaryFormat: true };
  return createWebVssClient(baseUrl, options);
}
