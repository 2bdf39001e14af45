// Retries, the per-attempt timeout and listAllKeyVersions against a real vss-server, with
// failures injected by an interceptor (which runs once per attempt) and a loopback
// server that never answers.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { DEFAULT_TIMEOUT_MS, listAllKeyVersions, listKeyVersionPages, watchChanges, type VssClientOptions } from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { startServer, type TestServer } from "./server.js";
import { storeId } from "./helpers.js";

/**
 * flaky returns an interceptor that fails the first `failures` attempts of every method
 * with code, and the attempts it saw, by method.
 */
function flaky(failures: number, code: Code): { interceptor: Interceptor; attempts: Map<string, number> } {
  const attempts = new Map<string, number>();
  const interceptor: Interceptor = (next) => async (req) => {
    const n = (attempts.get(req.method.name) ?? 0) + 1;
    attempts.set(req.method.name, n);
    if (n <= failures) {
      throw new ConnectError(`injected failure ${n}`, code);
    }
    return next(req);
  };
  return { interceptor, attempts };
}

describe("retries and timeouts", { timeout: 120_000 }, () => {
  let server: TestServer;
  let silent: Server;
  let silentUrl: string;
  const sockets = new Set<Socket>();
  before(async () => {
    server = await startServer(["--auth", "signature"]);
    // A server that accepts connections and never answers.
    silent = createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  });
  after(async () => {
    await server?.stop();
    for (const s of sockets) {
      s.destroy();
    }
    await new Promise((resolve) => silent?.close(resolve));
  });

  const fast: VssClientOptions["retry"] = { initialBackoffMs: 10, maxBackoffMs: 50 };

  it("retries idempotent calls while the failure may pass", async () => {
    const auth = { privateKey: randomBytes(32).toString("hex") };
    const store = storeId("retry");
    const ok = createNodeVssClient(server.baseUrl, { auth });
    await ok.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n }] });

    const { interceptor, attempts } = flaky(2, Code.Unavailable);
    const vss = createWebVssClient(server.baseUrl, { auth, retry: fast, interceptors: [interceptor] });
    assert.equal((await vss.getObject({ storeId: store, key: "k" })).value?.version, 1n);
    assert.equal(attempts.get("GetObject"), 3, "two failures, then success");
    await vss.deleteObject({ storeId: store, keyValue: { key: "gone", version: -1n } });
    assert.equal(attempts.get("DeleteObject"), 3);
    await vss.listChanges({ storeId: store, cursor: (await vss.getChangeCursor({ storeId: store })).cursor });
    assert.equal(attempts.get("ListChanges"), 3);
  });

  it("does not retry writes that are not idempotent, nor answers that will not change", async () => {
    const auth = { privateKey: randomBytes(32).toString("hex") };
    const store = storeId("no-retry");
    const unavailable = flaky(1, Code.Unavailable);
    const vss = createNodeVssClient(server.baseUrl, { auth, retry: fast, interceptors: [unavailable.interceptor] });
    await assert.rejects(vss.putObjects({ storeId: store, transactionItems: [{ key: "k", version: 0n }] }), (err: unknown) => {
      return ConnectError.from(err).code === Code.Unavailable;
    });
    assert.equal(unavailable.attempts.get("PutObjects"), 1, "PutObjects is the caller's to repeat");
    await assert.rejects(vss.acquireLease({ storeId: store, name: "n", holder: "h", ttl: { seconds: 5n } }));
    assert.equal(unavailable.attempts.get("AcquireLease"), 1);

    const notFound = flaky(0, Code.Unavailable);
    const plain = createNodeVssClient(server.baseUrl, { auth, retry: fast, interceptors: [notFound.interceptor] });
    await assert.rejects(plain.getObject({ storeId: store, key: "missing" }), (err: unknown) => ConnectError.from(err).code === Code.NotFound);
    assert.equal(notFound.attempts.get("GetObject"), 1, "not found is an answer");

    const once = flaky(1, Code.Unavailable);
    const noRetry = createNodeVssClient(server.baseUrl, { auth, retry: { maxAttempts: 1 }, interceptors: [once.interceptor] });
    await assert.rejects(noRetry.getObject({ storeId: store, key: "k" }));
    assert.equal(once.attempts.get("GetObject"), 1, "maxAttempts 1 turns retries off");
  });

  it("bounds each attempt by the timeout, and gives up after the last attempt", async () => {
    assert.equal(DEFAULT_TIMEOUT_MS, 30_000, "the Go client's default");
    const counted = flaky(0, Code.Unavailable);
    const vss = createNodeVssClient(silentUrl, { timeoutMs: 200, retry: { ...fast, maxAttempts: 3 }, interceptors: [counted.interceptor] });
    const started = Date.now();
    const err = await vss.getObject({ storeId: "s", key: "k" }).then(
      () => assert.fail("a server that never answers answered"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.DeadlineExceeded, err.message);
    assert.equal(counted.attempts.get("GetObject"), 3);
    assert.ok(Date.now() - started >= 600, `three attempts of 200 ms took ${Date.now() - started} ms`);
  });

  it("stops retrying when the caller aborts", async () => {
    const vss = createNodeVssClient(silentUrl, { timeoutMs: 100, retry: { initialBackoffMs: 60_000, maxBackoffMs: 60_000 } });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const err = await vss.getObject({ storeId: "s", key: "k" }, { signal: controller.signal }).then(
      () => assert.fail("answered"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.Canceled);
    assert.ok(Date.now() - started < 5_000, "the backoff did not run out");
  });

  it("never bounds a watch by the timeout", async () => {
    const auth = { privateKey: randomBytes(32).toString("hex") };
    const store = storeId("watch-timeout");
    const vss = createNodeVssClient(server.baseUrl, { auth, timeoutMs: 200 });
    const { cursor } = await vss.getChangeCursor({ storeId: store });
    const controller = new AbortController();
    const states: string[] = [];
    const watcher = watchChanges(vss, store, { cursor, signal: controller.signal, onStatus: (s) => states.push(s.state) });
    const first = (async () => {
      for await (const change of watcher) {
        controller.abort();
        return change;
      }
      return undefined;
    })();
    await new Promise((resolve) => setTimeout(resolve, 800));
    await vss.putObjects({ storeId: store, transactionItems: [{ key: "late", version: 0n }] });
    assert.equal((await first)?.key, "late");
    assert.deepEqual(states.slice(0, 2), ["connecting", "live"]);
    assert.ok(!states.includes("reconnecting"), `the stream was cut: ${states.join(", ")}`);
  });

  it("lists every key with listAllKeyVersions", async () => {
    const auth = { privateKey: randomBytes(32).toString("hex") };
    const store = storeId("list-all");
    const vss = createNodeVssClient(server.baseUrl, { auth });
    const keys = Array.from({ length: 23 }, (_, i) => `item/${String(i).padStart(2, "0")}`);
    for (const key of keys) {
      await vss.putObjects({ storeId: store, transactionItems: [{ key, version: 0n }] });
    }
    await vss.putObjects({ storeId: store, globalVersion: 0n, transactionItems: [{ key: "other", version: 0n }] });
    const all = await listAllKeyVersions(vss, store, { keyPrefix: "item/", pageSize: 10 });
    assert.deepEqual(all.keyVersions.map((kv) => kv.key), [...keys].reverse());
    assert.equal(all.globalVersion, 1n);
    let pages = 0;
    for await (const page of listKeyVersionPages(vss, store, { pageSize: 10 })) {
      pages++;
      assert.equal(page.globalVersion, pages === 1 ? 1n : undefined);
    }
    assert.equal(pages, 3);
    assert.deepEqual(await listAllKeyVersions(vss, storeId("empty")), { keyVersions: [], globalVersion: 0n });
  });
});
