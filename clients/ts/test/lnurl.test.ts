// LNURL-auth against real vss-servers started with --lnurl-auth (the login, the user it
// makes, the token cache and its renewal, one login for concurrent calls, a refused token
// dropped, a wrong signature, an issuer failing for a while), and against fake issuers for
// each way a login can fail.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, type TestContext } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DEFAULT_REFRESH_BEFORE_MS,
  LnurlAuth,
  authInterceptor,
  lnurlAuth,
  publicKeyHex,
  watchChanges,
  type LnurlAuthOptions,
  type RetryPolicy,
  type VssClient,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { startLnurlServer, type LnurlTestServer } from "./server.js";
import { newKey, storeId, rejection } from "./helpers.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const fast: RetryPolicy = { maxAttempts: 5, initialBackoffMs: 1, maxBackoffMs: 10 };

/**
 * Issuer is a fetch for LnurlAuthOptions.fetch that counts the requests for LNURLs and
 * for tokens, answers the first failLnurl requests for LNURLs with 503 itself, and lets
 * rewrite change the signed LNURL before it is sent.
 */
class Issuer {
  lnurls = 0;
  verifies = 0;
  failLnurl = 0;
  rewrite?: (signed: URL) => void;

  readonly fetch: typeof globalThis.fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.pathname === "/auth/lnurl") {
      this.lnurls++;
      if (this.failLnurl > 0) {
        this.failLnurl--;
        return new Response("try later", { status: 503 });
      }
    } else if (url.pathname === "/auth/lnurl/verify") {
      this.verifies++;
      this.rewrite?.(url);
    }
    return globalThis.fetch(url, init);
  };
}

/** expiryMs returns the exp claim of a JWT in UNIX milliseconds. */
function expiryMs(token: string): number {
  return (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number }).exp * 1000;
}

/** Clock is a settable clock for the token cache. */
class Clock {
  constructor(public ms: number) {}
  readonly now = () => new Date(this.ms);
}

describe("LNURL-auth against vss-server --auth signature,jwt --lnurl-auth", () => {
  let server: LnurlTestServer;
  let other: LnurlTestServer;
  before(async () => {
    [server, other] = await Promise.all([
      startLnurlServer(["--auth", "signature,jwt", "--lnurl-token-ttl", "2m"]),
      startLnurlServer(["--auth", "signature,jwt"]),
    ]);
  });
  after(async () => {
    await Promise.all([server?.stop(), other?.stop()]);
  });

  const transports: Record<string, (url: string, auth: LnurlAuthOptions | LnurlAuth) => VssClient> = {
    "node, Connect": (url, auth) => createNodeVssClient(url, { auth: { lnurlAuth: auth }, retry: fast }),
    "node, gRPC": (url, auth) => createNodeVssClient(url, { auth: { lnurlAuth: auth }, retry: fast, protocol: "grpc" }),
    "fetch (browser transport), Connect": (url, auth) => createWebVssClient(url, { auth: { lnurlAuth: auth }, retry: fast }),
  };
  for (const [name, factory] of Object.entries(transports)) {
    it(`logs in and acts as the linking key's user (${name})`, async () => {
      const key = newKey();
      const issuer = new Issuer();
      const domains: string[] = [];
      const vss = factory(server.baseUrl, {
        url: server.lnurlUrl,
        linkingKeyFor: (domain) => {
          domains.push(domain);
          return key;
        },
        fetch: issuer.fetch,
      });
      const store = storeId("lnurl");
      await vss.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n, value: encoder.encode("v") }] });
      const got = await vss.getObject({ storeId: store, key: "k" });
      assert.equal(decoder.decode(got.value?.value), "v");
      assert.deepEqual(domains, ["localhost"]);
      assert.deepEqual([issuer.lnurls, issuer.verifies], [1, 1], "two calls, one login");

      // The user is the linking key: the signature scheme with that key sees the data,
      // and another key does not.
      const signed = createNodeVssClient(server.baseUrl, { auth: { privateKey: key } });
      assert.equal(decoder.decode((await signed.getObject({ storeId: store, key: "k" })).value?.value), "v");
      const stranger = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
      assert.equal((await rejection(stranger.getObject({ storeId: store, key: "k" }))).code, Code.NotFound);
    });
  }

  it("makes one login for concurrent first calls, and reuses the token", async () => {
    const issuer = new Issuer();
    const auth = new LnurlAuth({ url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch });
    const node = createNodeVssClient(server.baseUrl, { auth: { lnurlAuth: auth } });
    const web = createWebVssClient(server.baseUrl, { auth: { lnurlAuth: auth } });
    const store = storeId("concurrent");
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? node : web).getObject({ storeId: store, key: "global_version" })),
    );
    assert.equal(results.length, 20);
    assert.deepEqual([issuer.lnurls, issuer.verifies], [1, 1], "20 concurrent calls through two clients, one login");
    const token = await auth.token();
    for (let i = 0; i < 5; i++) {
      await node.getObject({ storeId: store, key: "global_version" });
    }
    assert.equal(await auth.token(), token);
    assert.deepEqual([issuer.lnurls, issuer.verifies], [1, 1], "later calls reuse the token");
  });

  it("renews the token refreshBeforeMs ahead of its exp", async () => {
    assert.equal(DEFAULT_REFRESH_BEFORE_MS, 60_000);
    const issuer = new Issuer();
    const start = Date.now();
    const clock = new Clock(start);
    const auth = new LnurlAuth({ url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch, now: clock.now });
    const vss = createNodeVssClient(server.baseUrl, { auth: { lnurlAuth: auth } });
    const store = storeId("refresh");
    await vss.getObject({ storeId: store, key: "global_version" });
    const first = await auth.token();
    const exp = expiryMs(first);
    assert.ok(Math.abs(exp - start - 120_000) < 5_000, `exp ${exp} is not 2 minutes after the login at ${start}`);

    // The token lives 2 minutes; it is kept until 60 s before its exp.
    clock.ms = exp - 61_000;
    await vss.getObject({ storeId: store, key: "global_version" });
    assert.equal(issuer.verifies, 1, "61 s before exp: the cached token");
    clock.ms = exp - 59_000;
    await vss.getObject({ storeId: store, key: "global_version" });
    assert.equal(issuer.verifies, 2, "59 s before exp: a new token");
    clock.ms = start;
    assert.notEqual(await auth.token(), first, "the token was not replaced");
    assert.equal(issuer.verifies, 2);

    // refreshBeforeMs: 0 keeps a token until its exp.
    const late = new Issuer();
    const lateClock = new Clock(start);
    const keeper = new LnurlAuth({ url: server.lnurlUrl, linkingKey: newKey(), fetch: late.fetch, now: lateClock.now, refreshBeforeMs: 0 });
    const token = await keeper.token();
    lateClock.ms = expiryMs(token) - 1;
    assert.equal(await keeper.token(), token);
    lateClock.ms = expiryMs(token);
    assert.notEqual(await keeper.token(), token);
    assert.equal(late.verifies, 2);
  });

  it("drops a token the server refuses, and logs in again for the next call", async () => {
    // The other server has an issuer key of its own: it refuses this server's tokens.
    const issuer = new Issuer();
    const auth = new LnurlAuth({ url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch });
    const vss = createNodeVssClient(other.baseUrl, { auth: { lnurlAuth: auth }, retry: fast });
    for (let i = 1; i <= 2; i++) {
      const err = await rejection(vss.getObject({ storeId: "s", key: "global_version" }));
      assert.equal(err.code, Code.Unauthenticated, err.message);
      assert.equal(issuer.verifies, i, `call ${i}: one login per refused call`);
    }

    // A change stream the server refuses drops the token too.
    const watcher = watchChanges(vss, "s", { initialBackoffMs: 1 });
    const err = await rejection((async () => {
      for await (const _ of watcher) {
        assert.fail("a change from a refused stream");
      }
    })());
    assert.equal(err.code, Code.Unauthenticated, err.message);
    assert.equal(issuer.verifies, 3);
    await rejection(vss.getObject({ storeId: "s", key: "global_version" }));
    assert.equal(issuer.verifies, 4, "the call after the refused stream logs in again");

    // Only the token a call was refused with is dropped.
    const token = await auth.token();
    assert.equal(issuer.verifies, 5);
    auth.invalidate("an older token");
    assert.equal(await auth.token(), token);
    assert.equal(issuer.verifies, 5);
    auth.invalidate();
    assert.notEqual(await auth.token(), token);
    assert.equal(issuer.verifies, 6);
  });

  it("reports a signature the issuer refuses as unauthenticated, without retrying", async () => {
    const issuer = new Issuer();
    const wrongKey = publicKeyHex(newKey());
    issuer.rewrite = (signed) => signed.searchParams.set("key", wrongKey); // k1 signed by another key
    const vss = createNodeVssClient(server.baseUrl, {
      auth: { lnurlAuth: { url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch } },
      retry: fast,
    });
    const err = await rejection(vss.getObject({ storeId: "s", key: "global_version" }));
    assert.equal(err.code, Code.Unauthenticated, err.message);
    assert.match(err.rawMessage, /^LNURL-auth refused \(status 403\): /);
    assert.deepEqual([issuer.lnurls, issuer.verifies], [1, 1]);
  });

  it("retries an issuer that answers 503 with the call", async () => {
    const issuer = new Issuer();
    issuer.failLnurl = 2;
    const vss = createNodeVssClient(server.baseUrl, {
      auth: { lnurlAuth: { url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch } },
      retry: fast,
    });
    await vss.getObject({ storeId: "s", key: "global_version" });
    assert.deepEqual([issuer.lnurls, issuer.verifies], [3, 1]);

    // Without retries the 503 surfaces as unavailable.
    issuer.failLnurl = 1;
    const once = createNodeVssClient(server.baseUrl, {
      auth: { lnurlAuth: { url: server.lnurlUrl, linkingKey: newKey(), fetch: issuer.fetch } },
      retry: { maxAttempts: 1 },
    });
    const err = await rejection(once.getObject({ storeId: "s", key: "global_version" }));
    assert.equal(err.code, Code.Unavailable, err.message);
    assert.match(err.rawMessage, /status 503/);
  });
});

/** FakeIssuer is an HTTP server that plays an LNURL-auth issuer. */
interface FakeIssuer {
  /** url is its LNURL endpoint, <origin>/auth/lnurl. */
  url: string;
  /** logins counts the requests for tokens (to /verify). */
  logins: number;
}

/**
 * fakeIssuer answers lnurl at /auth/lnurl (with {self} standing for its own origin) and
 * verify at /verify with verifyStatus, when sig and key are there; either may be a
 * function that writes the answer itself. It is closed when the test ends.
 */
async function fakeIssuer(
  t: TestContext,
  lnurl: string | ((res: ServerResponse, self: string) => void),
  verifyStatus = 200,
  verify: string | ((res: ServerResponse) => void) = "",
): Promise<FakeIssuer> {
  const issuer: FakeIssuer = { url: "", logins: 0 };
  let self = "";
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", self);
    if (url.pathname === "/auth/lnurl") {
      if (typeof lnurl === "function") {
        lnurl(res, self);
      } else {
        res.end(lnurl.replaceAll("{self}", self));
      }
    } else if (url.pathname === "/verify") {
      issuer.logins++;
      if (!url.searchParams.get("sig") || url.searchParams.get("key")?.length !== 66) {
        res.writeHead(400).end(`{"status":"ERROR","reason":"no sig or key"}`);
      } else if (typeof verify === "function") {
        verify(res);
      } else {
        res.writeHead(verifyStatus, { "Content-Type": "application/json" }).end(verify);
      }
    } else {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer.url = self + "/auth/lnurl";
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return issuer;
}

/** jwt returns an unsigned token with the given payload; the client never verifies it. */
function jwt(payload: string): string {
  const enc = (s: string) => Buffer.from(s).toString("base64url");
  return `${enc('{"alg":"ES256"}')}.${enc(payload)}.c2ln`;
}

/** endless writes chunk to res until the client goes away. */
function endless(res: ServerResponse, first: string, chunk: string): void {
  res.writeHead(200);
  res.write(first);
  const timer = setInterval(() => res.write(chunk), 1);
  res.on("close", () => clearInterval(timer));
}

describe("LNURL-auth failures", () => {
  const k1 = "00".repeat(31) + "01";
  const login = `{self}/verify?tag=login&k1=${k1}`;
  // Calls go to a server that is never reached: every login here fails first, or the
  // test checks the token itself.
  const unreachable = "http://127.0.0.1:1";

  const cases: {
    name: string;
    issuer: (t: TestContext) => Promise<FakeIssuer | string>;
    keyFails?: boolean;
    code: Code;
    message: RegExp;
    logins: number;
  }[] = [
    { name: "no issuer (404)", issuer: (t) => fakeIssuer(t, (res) => res.writeHead(404).end("not found")), code: Code.Unauthenticated, message: /status 404/, logins: 0 },
    { name: "unreachable", issuer: async () => "http://127.0.0.1:1/auth/lnurl", code: Code.Unavailable, message: /LNURL-auth: GET http:\/\/127\.0\.0\.1:1\/auth\/lnurl: fetch failed/, logins: 0 },
    { name: "not a URL", issuer: (t) => fakeIssuer(t, "hello"), code: Code.Unauthenticated, message: /answered "hello", not an LNURL/, logins: 0 },
    { name: "not a login", issuer: (t) => fakeIssuer(t, `{self}/verify?tag=channelRequest&k1=${k1}`), code: Code.Unauthenticated, message: /not a login LNURL/, logins: 0 },
    { name: "short k1", issuer: (t) => fakeIssuer(t, "{self}/verify?tag=login&k1=00ff"), code: Code.Unauthenticated, message: /32-byte k1/, logins: 0 },
    {
      name: "refused (403, ERROR)",
      issuer: (t) => fakeIssuer(t, login, 403, `{"status":"ERROR","reason":"k1 already used"}`),
      code: Code.Unauthenticated,
      message: /^LNURL-auth refused \(status 403\): k1 already used$/,
      logins: 1,
    },
    {
      name: "ERROR with status 200",
      issuer: (t) => fakeIssuer(t, login, 200, `{"status":"ERROR","reason":"no such user","token":"x.y.z"}`),
      code: Code.Unauthenticated,
      message: /refused \(status 200\): no such user/,
      logins: 1,
    },
    {
      name: "issuer failing (503)",
      issuer: (t) => fakeIssuer(t, login, 503, `{"status":"ERROR","reason":"service unavailable"}`),
      code: Code.Unavailable,
      message: /refused \(status 503\): service unavailable/,
      logins: 3,
    },
    { name: "rate limited (429)", issuer: (t) => fakeIssuer(t, login, 429, "slow down"), code: Code.Unavailable, message: /status 429 without a token/, logins: 3 },
    { name: "OK without a token", issuer: (t) => fakeIssuer(t, login, 200, `{"status":"OK"}`), code: Code.Unauthenticated, message: /status 200 without a token/, logins: 1 },
    { name: "not JSON", issuer: (t) => fakeIssuer(t, login, 200, "<html>"), code: Code.Unauthenticated, message: /without a token/, logins: 1 },
    { name: "token is not a JWT", issuer: (t) => fakeIssuer(t, login, 200, `{"status":"OK","token":"opaque"}`), code: Code.Unauthenticated, message: /not a JWT/, logins: 1 },
    {
      name: "exp is not a number",
      issuer: (t) => fakeIssuer(t, login, 200, `{"status":"OK","token":"${jwt('{"exp":"soon"}')}"}`),
      code: Code.Unauthenticated,
      message: /numeric exp/,
      logins: 1,
    },
    {
      name: "an endless token answer is cut at 64 KiB",
      issuer: (t) => fakeIssuer(t, login, 200, (res) => endless(res, `{"status":"OK","token":"`, "a".repeat(1024))),
      code: Code.Unauthenticated,
      message: /status 200 without a token/,
      logins: 1,
    },
    { name: "no linking key", issuer: (t) => fakeIssuer(t, login), keyFails: true, code: Code.Unauthenticated, message: /linking key for 127\.0\.0\.1: locked/, logins: 0 },
  ];
  for (const tc of cases) {
    it(tc.name, { timeout: 20_000 }, async (t) => {
      const issuer = await tc.issuer(t);
      const options: LnurlAuthOptions = { url: typeof issuer === "string" ? issuer : issuer.url, linkingKey: newKey() };
      if (tc.keyFails) {
        options.linkingKeyFor = () => Promise.reject(new Error("locked"));
      }
      const vss = createNodeVssClient(unreachable, { auth: { lnurlAuth: options }, retry: { ...fast, maxAttempts: 3 } });
      const err = await rejection(vss.getObject({ storeId: "s", key: "k" }));
      assert.equal(err.code, tc.code, err.message);
      assert.match(err.rawMessage, tc.message);
      assert.equal(typeof issuer === "string" ? 0 : issuer.logins, tc.logins, "token requests");
    });
  }

  it("reads at most 4 KiB of the LNURL answer", { timeout: 20_000 }, async (t) => {
    const token = jwt(`{"sub":"x","exp":${Math.floor(Date.now() / 1000) + 3600}}`);
    const issuer = await fakeIssuer(
      t,
      (res, self) => endless(res, `${self}/verify?tag=login&k1=${k1}`, " ".repeat(1024)),
      200,
      `{"status":"OK","token":"${token}"}`,
    );
    const auth = new LnurlAuth({ url: issuer.url, linkingKey: newKey() });
    assert.equal(await auth.token(), token);
  });

  it("keeps a token without exp", async (t) => {
    const token = jwt('{"sub":"x"}');
    const issuer = await fakeIssuer(t, login, 200, `{"status":"OK","token":"${token}"}`);
    const auth = new LnurlAuth({ url: issuer.url, linkingKey: newKey(), now: () => new Date(2 ** 40 * 1000) });
    let sent = "";
    const vss = createNodeVssClient(unreachable, {
      retry: { maxAttempts: 1 },
      interceptors: [
        authInterceptor({ lnurlAuth: auth }),
        () => async (req) => {
          sent = req.header.get("Authorization") ?? "";
          throw new ConnectError("not sent", Code.FailedPrecondition);
        },
      ],
    });
    for (let i = 0; i < 3; i++) {
      await rejection(vss.getObject({ storeId: "s", key: "k" }));
      assert.equal(sent, "Bearer " + token);
    }
    assert.equal(issuer.logins, 1);
  });

  it("ends a login with the call's signal, and a waiting call with its own", async (t) => {
    const issuer = await fakeIssuer(t, () => {}); // never answers
    const auth = new LnurlAuth({ url: issuer.url, linkingKey: newKey() });
    const first = new AbortController();
    const second = new AbortController();
    const logging = rejection(auth.token(first.signal));
    const waiting = rejection(auth.token(second.signal));
    second.abort();
    assert.equal((await waiting).code, Code.Canceled);
    first.abort();
    assert.equal((await logging).code, Code.Canceled);

    // The client's attempt timeout bounds the login.
    const vss = createNodeVssClient(unreachable, {
      auth: { lnurlAuth: { url: issuer.url, linkingKey: newKey() } },
      timeoutMs: 200,
      retry: { maxAttempts: 1 },
    });
    assert.equal((await rejection(vss.getObject({ storeId: "s", key: "k" }))).code, Code.DeadlineExceeded);
  });

  it("checks its options", () => {
    for (const options of [
      { url: "", linkingKey: newKey() },
      { url: "ftp://host/auth/lnurl", linkingKey: newKey() },
      { url: "lnurl1dp68gurn8ghj7", linkingKey: newKey() },
      { url: "https://vss.example.com/auth/lnurl" },
      { url: "https://vss.example.com/auth/lnurl", linkingKey: "00".repeat(32) },
      { url: "https://vss.example.com/auth/lnurl", linkingKey: newKey(), refreshBeforeMs: -1 },
    ]) {
      assert.throws(() => new LnurlAuth(options), `new LnurlAuth(${JSON.stringify(options)}) accepted`);
      assert.throws(() => lnurlAuth(options));
    }
  });
});
