// The client against a real vss-server on loopback, through every transport it offers.
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { ErrorCode, vssErrorCode, type VssAuth, type VssClient } from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { startServer, type TestServer } from "./server.js";
import { newKey, storeId, rejection } from "./helpers.js";

const encoder = new TextEncoder();

type Factory = (baseUrl: string, auth?: VssAuth) => VssClient;

const transports: Record<string, Factory> = {
  "node, Connect binary over HTTP/1.1": (url, auth) => createNodeVssClient(url, { auth }),
  "node, Connect JSON over HTTP/2": (url, auth) =>
    createNodeVssClient(url, { auth, useBinaryFormat: false, httpVersion: "2" }),
  "node, gRPC": (url, auth) => createNodeVssClient(url, { auth, protocol: "grpc" }),
  "node, gRPC-Web": (url, auth) => createNodeVssClient(url, { auth, protocol: "grpc-web" }),
  "fetch (browser transport), Connect binary": (url, auth) => createWebVssClient(url, { auth }),
  "fetch (browser transport), gRPC-Web": (url, auth) => createWebVssClient(url, { auth, protocol: "grpc-web" }),
};

describe("against vss-server --auth signature", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(["--auth", "signature"]);
  });
  after(async () => {
    await server?.stop();
  });

  for (const [name, factory] of Object.entries(transports)) {
    describe(name, () => {
      let alice: VssClient;
      let bob: VssClient;
      before(() => {
        alice = factory(server.baseUrl, { privateKey: newKey() });
        bob = factory(server.baseUrl, { privateKey: newKey() });
      });

      it("puts, gets and updates a value", async () => {
        const store = storeId("put-get");
        await alice.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n, value: encoder.encode("one") }] });
        let got = await alice.getObject({ storeId: store, key: "k" });
        assert.equal(got.value?.key, "k");
        assert.equal(got.value?.version, 1n);
        assert.deepEqual(got.value?.value, encoder.encode("one"));

        await alice.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 1n, value: encoder.encode("two") }] });
        got = await alice.getObject({ storeId: store, key: "k" });
        assert.equal(got.value?.version, 2n);
        assert.deepEqual(got.value?.value, encoder.encode("two"));

        const big = randomBytes(3 << 20);
        await alice.putObjects({ storeId: store, transactionItems: [{ key: "k", version: -1n, value: big }] });
        got = await alice.getObject({ storeId: store, key: "k" });
        assert.equal(got.value?.version, 1n, "an unconditional write leaves the version at 1");
        assert.deepEqual(Buffer.from(got.value!.value), big);
      });

      it("checks and bumps the global version", async () => {
        const store = storeId("global");
        let gv = await alice.getObject({ storeId: store, key: "global_version" });
        assert.equal(gv.value?.version, 0n);
        await alice.putObjects({ storeId: store, globalVersion: 0n, transactionItems: [{ key: "a", version: 0n }] });
        gv = await alice.getObject({ storeId: store, key: "global_version" });
        assert.equal(gv.value?.version, 1n);
        const err = await rejection(alice.putObjects({ storeId: store, globalVersion: 0n, transactionItems: [{ key: "b", version: 0n }] }));
        assert.equal(err.code, Code.Aborted);
        assert.equal(vssErrorCode(err), ErrorCode.CONFLICT_EXCEPTION);
      });

      it("lists keys page by page, the global version on the first page only", async () => {
        const store = storeId("list");
        const keys = Array.from({ length: 25 }, (_, i) => `item/${String(i).padStart(2, "0")}`);
        for (const key of keys) {
          await alice.putObjects({ storeId: store, transactionItems: [{ key, version: 0n, value: encoder.encode(key) }] });
        }
        await alice.putObjects({ storeId: store, globalVersion: 0n, transactionItems: [{ key: "other", version: 0n }] });

        const seen: string[] = [];
        const pageSizes: number[] = [];
        let pageToken: string | undefined;
        for (let page = 0; page < 10; page++) {
          const res = await alice.listKeyVersions({ storeId: store, keyPrefix: "item/", pageSize: 10, pageToken });
          if (pageToken === undefined) {
            assert.equal(res.globalVersion, 1n, "the first page carries the global version");
          } else {
            assert.equal(res.globalVersion, undefined, "later pages carry no global version");
          }
          for (const kv of res.keyVersions) {
            assert.equal(kv.version, 1n);
            assert.equal(kv.value.length, 0, "listings carry no values");
            seen.push(kv.key);
          }
          pageSizes.push(res.keyVersions.length);
          if (!res.nextPageToken) {
            break;
          }
          pageToken = res.nextPageToken;
        }
        assert.deepEqual(seen, [...keys].reverse(), "newest created first, every key once");
        assert.ok(pageSizes.length >= 3 && pageSizes.every((n) => n <= 10), `page sizes ${pageSizes}`);

        const err = await rejection(alice.listKeyVersions({ storeId: store, pageToken: "not-a-token" }));
        assert.equal(err.code, Code.InvalidArgument);
        assert.equal(vssErrorCode(err), ErrorCode.INVALID_REQUEST_EXCEPTION);
      });

      it("deletes keys, idempotently", async () => {
        const store = storeId("delete");
        await alice.putObjects({ storeId: store, transactionItems: [{ key: "gone", version: 0n, value: encoder.encode("x") }] });
        await alice.deleteObject({ storeId: store, keyValue: { key: "gone", version: 1n } });
        const err = await rejection(alice.getObject({ storeId: store, key: "gone" }));
        assert.equal(err.code, Code.NotFound);
        await alice.deleteObject({ storeId: store, keyValue: { key: "gone", version: 1n } });
        await alice.deleteObject({ storeId: store, keyValue: { key: "never-there", version: -1n } });

        await alice.putObjects({ storeId: store, transactionItems: [{ key: "a", version: 0n }, { key: "b", version: 0n }] });
        await alice.putObjects({ storeId: store, deleteItems: [{ key: "a", version: 1n }, { key: "b", version: -1n }] });
        const list = await alice.listKeyVersions({ storeId: store });
        assert.deepEqual(list.keyVersions, []);
      });

      it("reports a version conflict as aborted and applies nothing", async () => {
        const store = storeId("conflict");
        await alice.putObjects({ storeId: store, transactionItems: [{ key: "taken", version: 0n }] });
        const err = await rejection(
          alice.putObjects({
            storeId: store,
            transactionItems: [
              { key: "fresh", version: 0n },
              { key: "taken", version: 0n },
            ],
          }),
        );
        assert.equal(err.code, Code.Aborted);
        assert.equal(vssErrorCode(err), ErrorCode.CONFLICT_EXCEPTION);
        const missing = await rejection(alice.getObject({ storeId: store, key: "fresh" }));
        assert.equal(missing.code, Code.NotFound, "the other item of the failed request was not written");

        const stale = await rejection(alice.putObjects({ storeId: store, transactionItems: [{ key: "taken", version: 5n }] }));
        assert.equal(stale.code, Code.Aborted);
      });

      it("reports a missing key as not found", async () => {
        const err = await rejection(alice.getObject({ storeId: storeId("missing"), key: "nothing" }));
        assert.equal(err.code, Code.NotFound);
        assert.equal(vssErrorCode(err), ErrorCode.NO_SUCH_KEY_EXCEPTION);
      });

      it("keeps users apart, even with the same store id", async () => {
        const store = storeId("shared");
        await alice.putObjects({ storeId: store, transactionItems: [{ key: "secret", version: 0n, value: encoder.encode("alice") }] });
        const err = await rejection(bob.getObject({ storeId: store, key: "secret" }));
        assert.equal(err.code, Code.NotFound);
        assert.deepEqual((await bob.listKeyVersions({ storeId: store })).keyVersions, []);
        await bob.putObjects({ storeId: store, transactionItems: [{ key: "secret", version: 0n, value: encoder.encode("bob") }] });
        await bob.deleteObject({ storeId: store, keyValue: { key: "secret", version: -1n } });
        const got = await alice.getObject({ storeId: store, key: "secret" });
        assert.deepEqual(got.value?.value, encoder.encode("alice"));
      });

      it("is refused without credentials or with a bearer token", async () => {
        const anonymous = factory(server.baseUrl);
        let err = await rejection(anonymous.getObject({ storeId: "", key: "k" }));
        assert.equal(err.code, Code.Unauthenticated);
        assert.equal(vssErrorCode(err), ErrorCode.AUTH_EXCEPTION);
        const bearer = factory(server.baseUrl, { bearerToken: "not-a-jwt" });
        err = await rejection(bearer.getObject({ storeId: "", key: "k" }));
        assert.equal(err.code, Code.Unauthenticated);
      });
    });
  }
});

/** jwt returns an RS256 JWT for sub, signed with privateKey. */
function jwt(privateKey: Parameters<typeof sign>[2], sub: string): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({ sub, iat: now, exp: now + 600 })}`;
  return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}

describe("against vss-server --auth signature,jwt", () => {
  let server: TestServer;
  let dir: string;
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "vss-client-test-"));
    const pem = join(dir, "jwt.pem");
    writeFileSync(pem, publicKey.export({ type: "spki", format: "pem" }));
    server = await startServer(["--auth", "signature,jwt", "--jwt-public-key-file", pem]);
  });
  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("authenticates with a bearer token, fixed or refreshed per request", async () => {
    let calls = 0;
    const fixed = createNodeVssClient(server.baseUrl, { auth: { bearerToken: jwt(privateKey, "carol") } });
    const refreshed = createWebVssClient(server.baseUrl, {
      auth: {
        bearerToken: async () => {
          calls++;
          return jwt(privateKey, "carol");
        },
      },
    });
    const store = storeId("jwt");
    await fixed.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n, value: encoder.encode("v") }] });
    const got = await refreshed.getObject({ storeId: store, key: "k" });
    assert.deepEqual(got.value?.value, encoder.encode("v"), "both clients act as user carol");
    await refreshed.getObject({ storeId: store, key: "k" });
    assert.equal(calls, 2, "the token function runs for every request");

    const other = createNodeVssClient(server.baseUrl, { auth: { bearerToken: jwt(privateKey, "dave") } });
    assert.equal((await rejection(other.getObject({ storeId: store, key: "k" }))).code, Code.NotFound);

    const forged = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    const intruder = createNodeVssClient(server.baseUrl, { auth: { bearerToken: jwt(forged, "carol") } });
    assert.equal((await rejection(intruder.getObject({ storeId: store, key: "k" }))).code, Code.Unauthenticated);
  });

  it("still accepts signature headers", async () => {
    const signer = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    const store = storeId("mixed");
    await signer.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n }] });
    assert.equal((await signer.getObject({ storeId: store, key: "k" })).value?.version, 1n);
  });
});
