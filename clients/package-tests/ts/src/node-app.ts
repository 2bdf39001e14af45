// A Node.js program that uses every entry point of the installed @govss/vss-client
// against the vss-server at $VSS_URL (signature authentication): the messages and
// schemas, the auth helpers and interceptors, createVssClient over a transport the
// program makes itself, "@govss/vss-client/node" with each protocol, and
// "@govss/vss-client/web" over Node's fetch; client-side encryption (EncryptedStore,
// LdkStore, VerificationError); and LNURL-auth at the issuer $VSS_LNURL_URL
// of the vss-server at $VSS_LNURL_SERVER_URL; a user's data exported, imported as another
// user from a Blob and deleted. It exits non-zero on any mismatch.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  CIPHER_FORMAT,
  EncryptedStore,
  KeyObfuscator,
  LDK_SCHEMA_VERSION_KEY,
  LdkStore,
  StorableBuilder,
  StorableSchema,
  VerificationError,
  VerificationErrorKind,
  checkSealedVersion,
  keysFromVssSeed,
  keysFromWalletSeed,
  vssSeedFromWalletSeed,
  type EncryptedItem,
  type EncryptedValue,
  type Keys,
  type LdkNamespace,
  type LdkSchemaVersion,
  type Opened,
  CursorExpiredError,
  DEFAULT_REFRESH_BEFORE_MS,
  DEFAULT_TIMEOUT_MS,
  DEVICE_ID_HEADER,
  ErrorCode,
  ErrorResponseSchema,
  FeedErrorReason,
  HeldLease,
  LEASE_NAME_HEADER,
  LeaseHeldError,
  LeaseLostError,
  LnurlAuth,
  acquireLease,
  feedErrorReason,
  listAllChanges,
  listAllKeyVersions,
  listChangePages,
  lnurlAuth,
  retryInterceptor,
  watchChanges,
  type RetryPolicy,
  type Change,
  type WatchStatus,
  GetObjectRequestSchema,
  KeyValueSchema,
  SIGNING_CONSTANT,
  VssService,
  authInterceptor,
  bearerAuth,
  clientInterceptors,
  createVssClient,
  publicKeyHex,
  signatureAuth,
  signatureHeader,
  vssErrorCode,
  type KeyValue,
  type LnurlAuthOptions,
  type PrivateKey,
  type VssAuth,
  type VssClient,
  type VssClientOptions,
  DELETE_STORE_CONFIRM,
  DumpFormatError,
  abortImport,
  deleteAllData,
  deleteStore,
  dumpv1,
  exportData,
  importData,
  verifyDump,
  type DumpSummary,
  type ImportProgress,
  type ImportResult,
} from "@govss/vss-client";
import { createNodeVssClient, type NodeVssClientOptions } from "@govss/vss-client/node";
import { createWebVssClient, type WebVssClientOptions } from "@govss/vss-client/web";
import packageJson from "@govss/vss-client/package.json" with { type: "json" };

const baseUrl = process.env.VSS_URL;
const lnurlServerUrl = process.env.VSS_LNURL_SERVER_URL;
const lnurlUrl = process.env.VSS_LNURL_URL;
if (!baseUrl || !lnurlServerUrl || !lnurlUrl) {
  throw new Error("VSS_URL, VSS_LNURL_SERVER_URL or VSS_LNURL_URL is not set");
}
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const privateKey: PrivateKey = randomBytes(32).toString("hex");
const auth: VssAuth = { privateKey };

/** roundTrip creates a key with vss, reads it back, updates it, lists it and deletes it. */
async function roundTrip(name: string, vss: VssClient): Promise<void> {
  const storeId = `${name}-${randomBytes(4).toString("hex")}`;
  const item: KeyValue = create(KeyValueSchema, { key: "greeting", version: 0n, value: encoder.encode("hello") });
  await vss.putObjects({ storeId, transactionItems: [item] });
  const got = await vss.getObject(create(GetObjectRequestSchema, { storeId, key: "greeting" }));
  assert.equal(got.value?.version, 1n, name);
  assert.equal(decoder.decode(got.value?.value), "hello", name);

  // The same create again is a version conflict, recognised through the user's own
  // @connectrpc/connect: one copy of it in the project, or instanceof fails.
  try {
    await vss.putObjects({ storeId, transactionItems: [{ key: "greeting", version: 0n }] });
    assert.fail(`${name}: a second create succeeded`);
  } catch (err) {
    assert.ok(err instanceof ConnectError, `${name}: want a ConnectError, got ${String(err)}`);
    assert.equal(err.code, Code.Aborted, name);
    assert.equal(vssErrorCode(err), ErrorCode.CONFLICT_EXCEPTION, name);
  }

  await vss.putObjects({ storeId, globalVersion: 0n, transactionItems: [{ key: "greeting", version: 1n, value: encoder.encode("hi") }] });
  const page = await vss.listKeyVersions({ storeId, pageSize: 10 });
  assert.deepEqual(page.keyVersions.map((kv) => [kv.key, kv.version]), [["greeting", 2n]], name);
  assert.equal(page.globalVersion, 1n, name);
  await vss.deleteObject({ storeId, keyValue: { key: "greeting", version: -1n } });
  try {
    await vss.getObject({ storeId, key: "greeting" });
    assert.fail(`${name}: the deleted key is still there`);
  } catch (err) {
    assert.equal(ConnectError.from(err).code, Code.NotFound, name);
  }
  console.log(`ok ${name}`);
}

const nodeOptions: NodeVssClientOptions[] = [
  { auth },
  { auth, protocol: "connect", httpVersion: "2", useBinaryFormat: false },
  { auth, protocol: "grpc" },
  { auth, protocol: "grpc-web" },
];
for (const options of nodeOptions) {
  await roundTrip(`node-${options.protocol ?? "connect"}${options.httpVersion ? "-http" + options.httpVersion : ""}`, createNodeVssClient(baseUrl, options));
}
const webOptions: WebVssClientOptions[] = [{ auth }, { auth, protocol: "grpc-web", fetch: globalThis.fetch }];
for (const options of webOptions) {
  await roundTrip(`web-${options.protocol ?? "connect"}`, createWebVssClient(baseUrl, options));
}

// Retries, the attempt timeout and listing every key.
{
  const retry: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 10, maxBackoffMs: 100 };
  let failures = 1;
  const vss = createNodeVssClient(baseUrl, {
    auth,
    retry,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    interceptors: [
      (next) => async (req) => {
        if (failures-- > 0) {
          throw new ConnectError("injected", Code.Unavailable);
        }
        return next(req);
      },
    ],
  });
  const storeId = `list-${randomBytes(4).toString("hex")}`;
  const listed = await listAllKeyVersions(vss, storeId, { pageSize: 5 });
  assert.deepEqual(listed, { keyVersions: [], globalVersion: 0n }, "listed after one retried failure");
  const own = createVssClient(createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [retryInterceptor(retry, 5_000), authInterceptor(auth)] }));
  assert.equal((await own.getObject({ storeId, key: "global_version" })).value?.version, 0n);
  console.log("ok retries and listAllKeyVersions");
}

// A client over a transport of the program's own, with the package's interceptors.
const own: VssClientOptions = { interceptors: [signatureAuth(privateKey)] };
await roundTrip("own-transport", createVssClient(createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: clientInterceptors(own) })));
await roundTrip("auth-interceptor", createVssClient(createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [authInterceptor(auth)] })));

// A bearer token means nothing to a server that checks signatures.
const stranger = createNodeVssClient(baseUrl, { interceptors: [bearerAuth(() => Promise.resolve("not-a-jwt"))] });
try {
  await stranger.getObject({ storeId: "any", key: "k" });
  assert.fail("a bearer token was accepted by a signature server");
} catch (err) {
  assert.ok(err instanceof ConnectError);
  assert.equal(err.code, Code.Unauthenticated);
}

// The change feed: one device writes under its device id, another follows the store.
{
  const storeId = `feed-${randomBytes(4).toString("hex")}`;
  const phone = createNodeVssClient(baseUrl, { auth, deviceId: "phone" });
  const laptop = createWebVssClient(baseUrl, { auth });
  const { cursor } = await laptop.getChangeCursor({ storeId });
  const controller = new AbortController();
  const states: WatchStatus["state"][] = [];
  const watcher = watchChanges(laptop, storeId, { cursor, signal: controller.signal, onStatus: (s) => states.push(s.state) });
  const seen: Change[] = [];
  const following = (async () => {
    for await (const change of watcher) {
      seen.push(change);
      if (seen.length === 2) {
        controller.abort();
      }
    }
  })();
  await phone.putObjects({ storeId, transactionItems: [{ key: "a", version: 0n, value: encoder.encode("1") }] });
  await phone.deleteObject({ storeId, keyValue: { key: "a", version: -1n } });
  await following;
  assert.deepEqual(seen.map((c) => [c.key, c.deleted, c.deviceId]), [["a", false, "phone"], ["a", true, "phone"]]);
  assert.equal(watcher.cursor, seen[1]!.cursor);
  assert.equal(states.at(-1), "ended");
  const all = await listAllChanges(laptop, storeId, { cursor });
  assert.deepEqual(all.changes.map((c) => c.cursor), seen.map((c) => c.cursor));
  let pages = 0;
  for await (const page of listChangePages(laptop, storeId, { cursor, pageSize: 1 })) {
    pages += page.changes.length > 0 ? 1 : 0;
  }
  assert.equal(pages, 2);
  try {
    await listAllChanges(laptop, storeId, { cursor: "999999999" });
    assert.fail("an unknown cursor was accepted");
  } catch (err) {
    assert.ok(err instanceof CursorExpiredError, String(err));
    assert.equal(err.reason, FeedErrorReason.CURSOR_UNKNOWN);
    assert.equal(feedErrorReason(err.cause), FeedErrorReason.CURSOR_UNKNOWN);
  }
  console.log("ok change feed");
}

// Leases: one holder at a time, its writes fenced, refused once released.
{
  const storeId = `lease-${randomBytes(4).toString("hex")}`;
  const vss = createNodeVssClient(baseUrl, { auth });
  const lease: HeldLease = await acquireLease(vss, storeId, "node", "laptop", 5_000, { deviceId: "laptop" });
  assert.equal(lease.headers()[LEASE_NAME_HEADER], "node");
  assert.equal(lease.headers()[DEVICE_ID_HEADER], "laptop");
  await lease.putObjects({ transactionItems: [{ key: "monitor", version: -1n, value: encoder.encode("m") }] });
  try {
    await acquireLease(vss, storeId, "node", "phone", 5_000);
    assert.fail("a second holder got the lease");
  } catch (err) {
    assert.ok(err instanceof LeaseHeldError, String(err));
    assert.equal(err.lease?.holder, "laptop");
  }
  assert.equal(await lease.release(), true);
  try {
    await lease.deleteObject({ keyValue: { key: "monitor", version: -1n } });
    assert.fail("a write through a released lease was sent");
  } catch (err) {
    assert.ok(err instanceof LeaseLostError, String(err));
    assert.equal(err.reason, "released");
  }
  console.log("ok leases");
}

// LNURL-auth: one login, whose token two clients share, as the user of the linking key.
{
  let logins = 0;
  const options: LnurlAuthOptions = {
    url: lnurlUrl,
    linkingKeyFor: (domain: string): PrivateKey => {
      assert.equal(domain, "localhost");
      return privateKey;
    },
    refreshBeforeMs: DEFAULT_REFRESH_BEFORE_MS,
    fetch: (input, init) => {
      logins += String(input).includes("/auth/lnurl/verify?") ? 1 : 0;
      return globalThis.fetch(input, init);
    },
    now: () => new Date(),
  };
  const shared = new LnurlAuth(options);
  const lnurlAuthChoice: VssAuth = { lnurlAuth: shared };
  await roundTrip("lnurl-node", createNodeVssClient(lnurlServerUrl, { auth: lnurlAuthChoice }));
  await roundTrip("lnurl-web", createWebVssClient(lnurlServerUrl, { auth: lnurlAuthChoice, protocol: "grpc-web" }));
  assert.equal(logins, 1, "two clients sharing an LnurlAuth log in once");

  const storeId = `lnurl-${randomBytes(4).toString("hex")}`;
  const own = createVssClient(createConnectTransport({ baseUrl: lnurlServerUrl, httpVersion: "1.1", interceptors: [lnurlAuth(options)] }));
  await own.putObjects({ storeId, transactionItems: [{ key: "k", version: 0n, value: encoder.encode("v") }] });
  assert.equal(logins, 2, "an interceptor made from options logs in itself");
  const signed = createNodeVssClient(lnurlServerUrl, { auth: { privateKey } });
  assert.equal(decoder.decode((await signed.getObject({ storeId, key: "k" })).value?.value), "v", "the linking key's user");

  const token: string = await shared.token(AbortSignal.timeout(DEFAULT_TIMEOUT_MS));
  shared.invalidate(token);
  assert.notEqual(await shared.token(), token);
  assert.equal(logins, 3);
  assert.equal(shared.url, lnurlUrl);
  console.log("ok LNURL-auth");
}

// Client-side encryption: keys from a wallet seed, the encrypted store over a Node and a
// fetch client, a lying server caught, and LDK Node's layout.
{
  const keys: Keys = keysFromWalletSeed(randomBytes(64));
  assert.equal(String(keys), "Keys(dataEncryptionKey, obfuscationMasterKey: redacted)");
  assert.equal(keysFromVssSeed(vssSeedFromWalletSeed(new Uint8Array(64))).dataEncryptionKey.length, 32);
  const storeId = `enc-${randomBytes(4).toString("hex")}`;
  const nodeClient = createNodeVssClient(baseUrl, { auth });
  const enc = new EncryptedStore(nodeClient, keys);
  const item: EncryptedItem = { key: "greeting", value: encoder.encode("hello, privately"), version: 0n };
  await enc.put(storeId, [item, { key: "other", value: encoder.encode("x"), version: -1n }], { globalVersion: 0n });
  const viaFetch = new EncryptedStore(createWebVssClient(baseUrl, { auth }), keys);
  const got: EncryptedValue = await viaFetch.get(storeId, "greeting");
  assert.deepEqual([decoder.decode(got.value), got.version, got.sealedVersion], ["hello, privately", 1n, 0n]);
  assert.deepEqual((await enc.list(storeId)).keyVersions.map((k) => k.key), ["other", "greeting"]);
  const stored = await nodeClient.getObject({ storeId, key: enc.storageKey("greeting") });
  assert.ok(!decoder.decode(stored.value?.value).includes("hello"), "the server holds the value in clear");
  assert.equal(fromBinary(StorableSchema, stored.value!.value).encryptionMetadata?.cipherFormat, CIPHER_FORMAT);
  // The server answers with another key's value: caught, no data returned.
  const other = await nodeClient.getObject({ storeId, key: enc.storageKey("other") });
  await nodeClient.putObjects({ storeId, transactionItems: [{ key: enc.storageKey("greeting"), version: 1n, value: other.value!.value }] });
  try {
    await enc.get(storeId, "greeting");
    assert.fail("a swapped value was returned");
  } catch (err) {
    assert.ok(err instanceof VerificationError, String(err));
    const kind: VerificationErrorKind = err.kind;
    assert.equal(kind, VerificationErrorKind.AUTHENTICATION);
  }
  await enc.delete(storeId, "other", -1n);

  // vss-client-ng's own known answer.
  const obfuscator = new KeyObfuscator(new Uint8Array(32).fill(42));
  assert.equal(obfuscator.obfuscate("a_semi_secret_key"), "cMoet5WTvl0nYds+VW7JPCtXUq24DtMG2dR9apAi/T5jy8eNIEyDrUAJBS4geeUuX+XGXPqlizIByOip2g");
  const builder = new StorableBuilder(keys.dataEncryptionKey);
  const opened: Opened = builder.deconstruct(builder.build(encoder.encode("v"), 7n, encoder.encode("k")), encoder.encode("k"), "k");
  checkSealedVersion("k", opened.sealedVersion, 8n);

  const ldkStoreId = `ldk-${randomBytes(4).toString("hex")}`;
  const ldk: LdkStore = await LdkStore.open(nodeClient, keys, ldkStoreId);
  const schema: LdkSchemaVersion = ldk.schema;
  assert.equal(schema, "V1");
  await ldk.write("monitors", "", "m1", encoder.encode("monitor"));
  const reopened = await LdkStore.open(enc, ldkStoreId, { readOnly: true });
  assert.equal(reopened.schemaSource, "stored");
  assert.equal(decoder.decode(await reopened.read("monitors", "", "m1")), "monitor");
  const namespaces: LdkNamespace[] = await reopened.listNamespaces();
  assert.deepEqual(namespaces.map((ns) => [ns.primaryNamespace, ns.keys.map((k) => k.key)]), [["monitors", ["m1"]]]);
  assert.equal(LDK_SCHEMA_VERSION_KEY, "vss_schema_version");
  console.log("ok client-side encryption and the LDK layout");
}

// Moving a user's data: exported through Node, imported as another user through fetch
// from a Blob, checked by checksum, then deleted after a dry run.
{
  const from = createNodeVssClient(baseUrl, { auth: { privateKey: randomBytes(32).toString("hex") } });
  const to = createWebVssClient(baseUrl, { auth: { privateKey: randomBytes(32).toString("hex") } });
  await from.putObjects({ storeId: "wallet", globalVersion: 0n, transactionItems: [{ key: "k", version: 0n, value: randomBytes(100_000) }] });
  const exp = exportData(from);
  const file = await exp.toBlob();
  const summary: DumpSummary = exp.summary!;
  assert.equal(summary.header.scope, dumpv1.Scope.USER);
  assert.deepEqual([summary.stores, summary.entries, summary.bytes], [1, 1, file.size]);
  const progress: ImportProgress[] = [];
  const result: ImportResult = await importData(to, file, { importId: "package-test", chunkBytes: 10_000, onProgress: (p) => progress.push(p) });
  assert.deepEqual(result.sha256, summary.sha256);
  assert.deepEqual(result.sha256, (await verifyDump(file)).sha256);
  assert.ok(progress.length > 1 && progress.at(-1)!.bytes === file.size);
  await abortImport(to, "package-test"); // a finished import is not undone
  assert.equal((await to.getObject({ storeId: "wallet", key: "k" })).value?.value.length, 100_000);
  try {
    await verifyDump(new Uint8Array(12));
    assert.fail("twelve zero bytes passed for a dump");
  } catch (err) {
    assert.ok(err instanceof DumpFormatError && err.reason === "not-dump", String(err));
  }
  const dry = await deleteStore(to, "wallet", { dryRun: true });
  assert.deepEqual([dry.keys, dry.deleted], [2, false], "the key and the global version, not deleted");
  assert.equal((await deleteStore(to, "wallet")).deleted, true);
  assert.equal(DELETE_STORE_CONFIRM, "delete store ");
  assert.equal((await deleteAllData(from)).stores, 1);
  console.log("ok export, import and delete");
}

// The helpers on their own.
const header = signatureHeader(privateKey, new Date(1_700_000_000_000));
assert.ok(header.startsWith(publicKeyHex(privateKey)), header);
assert.ok(header.endsWith("1700000000"), header);
assert.equal(SIGNING_CONSTANT.length, 64);
assert.equal(VssService.typeName, "vss.v1.VssService");
const detail = create(ErrorResponseSchema, { errorCode: ErrorCode.NO_SUCH_KEY_EXCEPTION, message: "m" });
assert.equal(fromBinary(ErrorResponseSchema, toBinary(ErrorResponseSchema, detail)).errorCode, ErrorCode.NO_SUCH_KEY_EXCEPTION);
assert.equal(packageJson.name, "@govss/vss-client");
console.log(`ok @govss/vss-client ${packageJson.version}: every entry point`);
