// The change feed and lease helpers against a real vss-server: live changes with the
// writer's device id, resumption across a cut stream and a restarted server with no
// change lost or repeated, expired and unknown cursors, and leases that renew, fence
// writes and refuse them once lost.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  CursorExpiredError,
  FeedErrorReason,
  LeaseHeldError,
  LeaseLostError,
  acquireLease,
  feedErrorReason,
  listAllChanges,
  listChangePages,
  watchChanges,
  type Change,
  type ChangeWatcher,
  type HeldLease,
  type VssAuth,
  type VssClient,
  type WatchStatus,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { startServer, type TestServer } from "./server.js";
import { newKey, storeId } from "./helpers.js";

const encoder = new TextEncoder();

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** eventually retries check every 50 ms until it passes or timeoutMs passed. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) {
      assert.fail(`timed out waiting for ${what}`);
    }
    await delay(50);
  }
}

/**
 * Collector iterates a watcher in the background and keeps what it delivers, its
 * statuses and how it ended.
 */
/**
 * The watches of the test running. Each is stopped when its test ends, passed or failed:
 * a watch left reconnecting would keep the process, and the run, alive.
 */
const openWatches = new Set<Collector>();
afterEach(async () => {
  await Promise.all([...openWatches].map((w) => w.stop()));
});

class Collector {
  readonly changes: Change[] = [];
  readonly statuses: WatchStatus[] = [];
  readonly done: Promise<unknown>;
  readonly controller = new AbortController();
  readonly watcher: ChangeWatcher;

  constructor(client: VssClient, store: string, options: { cursor?: string; includeValues?: boolean; maxBackoffMs?: number } = {}) {
    const watcher = watchChanges(client, store, {
      ...options,
      signal: this.controller.signal,
      initialBackoffMs: 50,
      maxBackoffMs: options.maxBackoffMs ?? 500,
      onStatus: (s) => this.statuses.push(s),
    });
    this.watcher = watcher;
    openWatches.add(this);
    this.done = (async () => {
      try {
        for await (const change of watcher) {
          this.changes.push(change);
        }
        return undefined;
      } catch (err) {
        return err;
      }
    })();
  }

  /** keys returns the delivered changes as key@version, "-" for deletes. */
  keys(): string[] {
    return this.changes.map((c) => `${c.deleted ? "-" : ""}${c.key}@${c.version}`);
  }

  async live(): Promise<void> {
    await eventually("the watch to be live", () => this.watcher.state === "live");
  }

  async count(n: number): Promise<void> {
    await eventually(`${n} changes (have ${this.keys().join(", ")})`, () => this.changes.length >= n, 20_000);
  }

  async stop(): Promise<unknown> {
    openWatches.delete(this);
    this.controller.abort();
    return this.done;
  }
}

/** put writes key unconditionally with value (or the key itself). */
async function put(client: VssClient, store: string, key: string, value = key): Promise<void> {
  await client.putObjects({ storeId: store, transactionItems: [{ key, version: -1n, value: encoder.encode(value) }] });
}

type Factory = (baseUrl: string, auth: VssAuth, deviceId?: string) => VssClient;

const transports: Record<string, Factory> = {
  "node, Connect": (url, auth, deviceId) => createNodeVssClient(url, { auth, deviceId }),
  "node, gRPC": (url, auth, deviceId) => createNodeVssClient(url, { auth, deviceId, protocol: "grpc" }),
  "fetch, Connect": (url, auth, deviceId) => createWebVssClient(url, { auth, deviceId }),
  "fetch, gRPC-Web": (url, auth, deviceId) => createWebVssClient(url, { auth, deviceId, protocol: "grpc-web" }),
};

describe("change feed", { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(["--auth", "signature"]);
  });
  after(async () => {
    await server?.stop();
  });

  for (const [name, factory] of Object.entries(transports)) {
    it(`delivers another device's writes live, with its device id (${name})`, async () => {
      const auth = { privateKey: newKey() };
      const phone = factory(server.baseUrl, auth, "phone");
      const laptop = factory(server.baseUrl, auth);
      const store = storeId("live");
      await put(laptop, store, "before");
      const { cursor } = await laptop.getChangeCursor({ storeId: store });

      const watch = new Collector(laptop, store, { cursor, includeValues: true });
      await watch.live();
      await put(phone, store, "a", "from the phone");
      await phone.putObjects({
        storeId: store,
        globalVersion: 0n,
        transactionItems: [{ key: "a", version: 1n, value: encoder.encode("second") }],
      });
      await laptop.deleteObject({ storeId: store, keyValue: { key: "before", version: -1n } });
      await watch.count(4);
      const keys = watch.keys();
      assert.equal(keys[0], "a@1", "only the changes after the cursor, in commit order");
      assert.deepEqual(keys.slice(1, 3).sort(), ["a@2", "global_version@1"], "the changes of one write together");
      assert.equal(keys[3], "-before@1");
      assert.equal(keys.length, 4);
      const [first, , , deleted] = watch.changes;
      const second = watch.changes.find((c) => c.key === "a" && c.version === 2n)!;
      assert.equal(first!.deviceId, "phone");
      assert.equal(second.deviceId, "phone");
      assert.equal(deleted!.deviceId, "", "a write without a device id");
      assert.deepEqual(second.value, encoder.encode("second"), "the key still holds this version: its value");
      if (first!.value !== undefined) {
        assert.deepEqual(first!.value, encoder.encode("from the phone"), "read before the key moved on");
      }
      assert.equal(deleted!.value, undefined, "a delete has no value");
      assert.ok(first!.changedAt && Number(first!.changedAt.seconds) > 1_700_000_000);
      assert.equal(watch.watcher.cursor, deleted!.cursor);
      assert.equal(await watch.stop(), undefined, "an aborted watch ends without an error");
      assert.equal(watch.watcher.state, "ended");
      assert.deepEqual(
        watch.statuses.map((s) => s.state),
        ["connecting", "live", "ended"],
      );
    });
  }

  it("pages through the feed and catches up from a cursor", async () => {
    const auth = { privateKey: newKey() };
    const vss = createNodeVssClient(server.baseUrl, { auth, deviceId: "pager" });
    const store = storeId("pages");
    const { cursor: start } = await vss.getChangeCursor({ storeId: store });
    const keys = Array.from({ length: 25 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    for (const key of keys) {
      await put(vss, store, key);
    }
    const pages = [];
    for await (const page of listChangePages(vss, store, { cursor: start, pageSize: 10, includeValues: true })) {
      pages.push(page);
    }
    assert.deepEqual(pages.map((p) => p.changes.length), [10, 10, 5]);
    assert.deepEqual(pages.flatMap((p) => p.changes.map((c) => c.key)), keys);
    assert.deepEqual(pages[0]!.changes[0]!.value, encoder.encode("k00"));
    assert.equal(pages[0]!.changes[0]!.deviceId, "pager");

    const middle = pages[1]!.nextCursor;
    const rest = await listAllChanges(vss, store, { cursor: middle });
    assert.deepEqual(rest.changes.map((c) => c.key), keys.slice(20));
    assert.equal(rest.cursor, pages[2]!.nextCursor);
    const none = await listAllChanges(vss, store, { cursor: rest.cursor });
    assert.deepEqual(none, { changes: [], cursor: rest.cursor });
  });

  it("ends with a CursorExpiredError for a cursor the server never issued", async () => {
    const vss = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    const store = storeId("unknown");
    await put(vss, store, "k");
    const watch = new Collector(vss, store, { cursor: "999999" });
    const err = await watch.done;
    assert.ok(err instanceof CursorExpiredError, `want a CursorExpiredError, got ${String(err)}`);
    assert.equal(err.reason, FeedErrorReason.CURSOR_UNKNOWN);
    assert.equal(err.cursor, "999999");
    assert.ok(err.cause instanceof ConnectError && err.cause.code === Code.FailedPrecondition);
    assert.equal(watch.watcher.state, "ended");
    assert.equal(watch.statuses.at(-1)?.state, "ended");
    await assert.rejects(listAllChanges(vss, store, { cursor: "999999" }), CursorExpiredError);
  });

  it("ends with the ConnectError when retrying cannot help", async () => {
    const anonymous = createNodeVssClient(server.baseUrl);
    const watch = new Collector(anonymous, storeId("anonymous"));
    const err = await watch.done;
    assert.ok(err instanceof ConnectError, String(err));
    assert.equal(err.code, Code.Unauthenticated);
    assert.equal(watch.statuses.filter((s) => s.state === "connecting").length, 1, "not retried");
  });
});

/**
 * startProxy forwards TCP connections from a loopback port to target; cut() breaks every
 * connection open through it, as a network failure would.
 */
async function startProxy(target: URL): Promise<{ url: string; cut: () => void; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = netConnect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    cut: () => {
      for (const s of sockets) {
        s.destroy();
      }
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) {
          s.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

describe("change feed across failures", { timeout: 120_000 }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vss-feed-test-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("resumes after the connection is cut, with no change lost or repeated", async () => {
    const server = await startServer(["--auth", "signature"]);
    const proxy = await startProxy(new URL(server.baseUrl));
    try {
      const auth = { privateKey: newKey() };
      const writer = createNodeVssClient(server.baseUrl, { auth });
      const store = storeId("cut");
      for (const [name, watcherClient] of [
        ["node", createNodeVssClient(proxy.url, { auth })],
        ["fetch", createWebVssClient(proxy.url, { auth })],
      ] as const) {
        const { cursor } = await writer.getChangeCursor({ storeId: store });
        const watch = new Collector(watcherClient, store, { cursor });
        const want: string[] = [];
        let n = 0;
        const write = async (count: number) => {
          for (let i = 0; i < count; i++) {
            const key = `${name}-${n++}`;
            await put(writer, store, key);
            want.push(`${key}@1`);
          }
        };
        await watch.live();
        for (let round = 0; round < 3; round++) {
          await write(3);
          await watch.count(want.length);
          proxy.cut();
          await write(4); // while the watcher is disconnected
          await eventually(`${name}: reconnected`, () => watch.statuses.filter((s) => s.state === "live").length >= round + 2);
        }
        await write(2);
        await watch.count(want.length);
        await delay(200);
        assert.deepEqual(watch.keys(), want, `${name}: every change once, in order`);
        const reconnects = watch.statuses.filter((s): s is Extract<WatchStatus, { state: "reconnecting" }> => s.state === "reconnecting");
        assert.ok(reconnects.length >= 3, `${name}: ${reconnects.length} reconnections`);
        assert.equal(await watch.stop(), undefined);
        // A second watch from the first one's cursor sees nothing new.
        const again = await listAllChanges(writer, store, { cursor: watch.watcher.cursor });
        assert.deepEqual(again.changes, []);
      }
    } finally {
      await proxy.close();
      await server.stop();
    }
  });

  it("resumes after the server restarts, with no change lost or repeated", async () => {
    const flags = ["--auth", "signature", "--database-url", "", "--data-dir", join(dir, "restart")];
    let server = await startServer(flags);
    const listen = new URL(server.baseUrl).host;
    try {
      const auth = { privateKey: newKey() };
      const store = storeId("restart");
      const watch = new Collector(createNodeVssClient(server.baseUrl, { auth }), store, { cursor: "" });
      await watch.live();
      const want: string[] = [];
      for (let round = 0; round < 2; round++) {
        const writer = createNodeVssClient(server.baseUrl, { auth });
        for (let i = 0; i < 3; i++) {
          const key = `r${round}-${i}`;
          await put(writer, store, key);
          want.push(`${key}@1`);
        }
        await watch.count(want.length);
        await server.stop();
        await eventually("the watch to notice the shutdown", () => watch.watcher.state !== "live");
        server = await startServer([...flags, "--listen", listen]);
        const after = createNodeVssClient(server.baseUrl, { auth });
        await put(after, store, `after-restart-${round}`); // maybe before the watch is back
        want.push(`after-restart-${round}@1`);
        await watch.count(want.length);
      }
      await delay(200);
      assert.deepEqual(watch.keys(), want, "every change once, in order");
      const shutdown = watch.statuses.find(
        (s): s is Extract<WatchStatus, { state: "reconnecting" }> => s.state === "reconnecting" && s.error.code === Code.Unavailable,
      );
      assert.ok(shutdown, `a reconnection after the server went away: ${JSON.stringify(watch.statuses.map((s) => s.state))}`);
      assert.equal(await watch.stop(), undefined);
    } finally {
      await server.stop();
    }
  });

  it("ends with a CursorExpiredError once the changes after the cursor were dropped", async () => {
    const flags = ["--auth", "signature", "--database-url", "", "--data-dir", join(dir, "expired"), "--feed-retention", "1s"];
    let server = await startServer(flags);
    const auth = { privateKey: newKey() };
    const store = storeId("expired");
    try {
      const vss = createNodeVssClient(server.baseUrl, { auth });
      await put(vss, store, "old");
      const { cursor: old } = await vss.getChangeCursor({ storeId: store });
      await put(vss, store, "newer");
      await delay(1_500);
      // The server prunes what is older than its retention when it starts.
      await server.stop();
      server = await startServer(flags);
      const restarted = createNodeVssClient(server.baseUrl, { auth });
      await eventually("the old changes to be pruned", async () => {
        try {
          await restarted.listChanges({ storeId: store, cursor: old });
          return false;
        } catch (err) {
          return feedErrorReason(err) === FeedErrorReason.CURSOR_EXPIRED;
        }
      });
      const watch = new Collector(restarted, store, { cursor: old });
      const err = await watch.done;
      assert.ok(err instanceof CursorExpiredError, `want a CursorExpiredError, got ${String(err)}`);
      assert.equal(err.reason, FeedErrorReason.CURSOR_EXPIRED);
      assert.equal(err.cursor, old);
      assert.deepEqual(watch.changes, []);
      const ended = watch.statuses.at(-1);
      assert.ok(ended?.state === "ended" && ended.error === err);
      await assert.rejects(listAllChanges(restarted, store, { cursor: old }), CursorExpiredError);

      // The way out: a fresh cursor, a listing, then the feed from that cursor.
      const { cursor } = await restarted.getChangeCursor({ storeId: store });
      const listed = await restarted.listKeyVersions({ storeId: store });
      assert.deepEqual(listed.keyVersions.map((k) => k.key).sort(), ["newer", "old"]);
      const fresh = new Collector(restarted, store, { cursor });
      await fresh.live();
      await put(restarted, store, "fresh");
      await fresh.count(1);
      assert.deepEqual(fresh.keys(), ["fresh@1"]);
      await fresh.stop();
    } finally {
      await server.stop();
    }
  });
});

/**
 * recordingClient returns a client that records the method of every request it sends,
 * and fails them all as unavailable while partitioned() is true.
 */
function recordingClient(baseUrl: string, auth: VssAuth, partitioned: () => boolean): { client: VssClient; sent: string[] } {
  const sent: string[] = [];
  const record: Interceptor = (next) => async (req) => {
    if (partitioned()) {
      throw new ConnectError("the network is down (test)", Code.Unavailable);
    }
    sent.push(req.method.name);
    return next(req);
  };
  return { client: createNodeVssClient(baseUrl, { auth, interceptors: [record] }), sent };
}

describe("leases", { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(["--auth", "signature"]);
  });
  after(async () => {
    await server?.stop();
  });

  it("renews in the background and fences writes", async () => {
    const auth = { privateKey: newKey() };
    const laptop = createNodeVssClient(server.baseUrl, { auth });
    const phone = createNodeVssClient(server.baseUrl, { auth });
    const store = storeId("renew");
    const lease = await acquireLease(laptop, store, "node", "laptop", 1_000, { deviceId: "laptop" });
    assert.ok(lease.token > 0n);
    assert.equal(lease.holder, "laptop");
    await delay(2_500); // well past the TTL: only renewals keep it
    assert.ok(lease.held, String(lease.lost));
    const got = await phone.getLease({ storeId: store, name: "node" });
    assert.equal(got.lease?.held, true);
    assert.equal(got.lease?.token, lease.token);
    assert.ok(lease.lease.ttlRemaining !== undefined);

    const refused = await acquireLease(phone, store, "node", "phone", 1_000).then(
      () => assert.fail("a second holder got the lease"),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof LeaseHeldError, String(refused));
    assert.equal(refused.lease?.holder, "laptop");
    assert.equal(refused.lease?.token, lease.token);

    const { cursor } = await phone.getChangeCursor({ storeId: store });
    await lease.putObjects({ transactionItems: [{ key: "monitor", version: -1n, value: encoder.encode("v1") }] });
    await lease.deleteObject({ keyValue: { key: "monitor", version: -1n } });
    const { changes } = await listAllChanges(phone, store, { cursor });
    assert.deepEqual(
      changes.map((c) => [c.key, c.deleted, c.deviceId]),
      [
        ["monitor", false, "laptop"],
        ["monitor", true, "laptop"],
      ],
    );
    await assert.rejects(lease.putObjects({ storeId: "another-store", transactionItems: [] }), /guards store/);

    assert.equal(await lease.release(), true);
    assert.equal(lease.lost?.reason, "released");
    await assert.rejects(lease.putObjects({ transactionItems: [{ key: "k", version: -1n }] }), LeaseLostError);
    const next = await acquireLease(phone, store, "node", "phone", 1_000);
    assert.ok(next.token > lease.token, "a later grant has a larger token");
    await next.release();
  });

  it("loses the lease when renewals fail past its deadline: the server and the helper refuse the old holder's writes", async () => {
    const auth = { privateKey: newKey() };
    let down = false;
    const a = recordingClient(server.baseUrl, auth, () => down);
    const b = createNodeVssClient(server.baseUrl, { auth });
    const store = storeId("fence");
    let lostCalls = 0;
    const lease = await acquireLease(a.client, store, "node", "a", 1_000, { onLost: () => lostCalls++ });
    const fence = lease.headers();
    down = true; // A's renewals fail from now on
    const lost = await lease.whenLost;
    assert.equal(lost.reason, "expired");
    assert.equal(lostCalls, 1);
    assert.ok(!lease.held);

    // B takes the lease as soon as the server lets it go.
    let taken: HeldLease | undefined;
    await eventually("B to get the lease", async () => {
      try {
        taken = await acquireLease(b, store, "node", "b", 5_000);
        return true;
      } catch (err) {
        if (err instanceof LeaseHeldError) {
          return false;
        }
        throw err;
      }
    });
    assert.ok(taken!.token > lease.token);
    down = false;

    // The server refuses a write fenced with A's old token and applies nothing.
    const stale = await b.putObjects({ storeId: store, transactionItems: [{ key: "k", version: -1n }] }, { headers: fence }).then(
      () => assert.fail("a write with the old token was applied"),
      (err: unknown) => ConnectError.from(err),
    );
    assert.equal(stale.code, Code.FailedPrecondition);
    assert.equal(feedErrorReason(stale), FeedErrorReason.LEASE_NOT_HELD);
    await assert.rejects(b.getObject({ storeId: store, key: "k" }), (err: unknown) => ConnectError.from(err).code === Code.NotFound);

    // A's helper refuses its write without sending it.
    const before = a.sent.length;
    const refused = await lease.putObjects({ transactionItems: [{ key: "k", version: -1n }] }).then(
      () => assert.fail("the helper wrote after losing the lease"),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof LeaseLostError, String(refused));
    assert.equal(refused.reason, "expired");
    assert.deepEqual(a.sent.slice(before), [], "nothing was sent");
    assert.throws(() => lease.headers(), LeaseLostError);

    await taken!.putObjects({ transactionItems: [{ key: "k", version: -1n }] });
    await taken!.release();
  });

  it("loses the lease when the server answers LEASE_NOT_HELD", async () => {
    const auth = { privateKey: newKey() };
    const a = recordingClient(server.baseUrl, auth, () => false);
    const other = createNodeVssClient(server.baseUrl, { auth });
    const store = storeId("not-held");

    // A write answered LEASE_NOT_HELD.
    const first = await acquireLease(a.client, store, "node", "a", 60_000);
    await other.releaseLease({ storeId: store, name: "node", token: first.token });
    const refused = await first.putObjects({ transactionItems: [{ key: "k", version: -1n }] }).then(
      () => assert.fail("a write after the release was applied"),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof LeaseLostError, String(refused));
    assert.equal(refused.reason, "not-held");
    assert.equal(feedErrorReason(refused.cause), FeedErrorReason.LEASE_NOT_HELD, "the server refused it");
    const before = a.sent.length;
    await assert.rejects(first.deleteObject({ keyValue: { key: "k", version: -1n } }), LeaseLostError);
    await assert.rejects(first.renew(), LeaseLostError);
    assert.deepEqual(a.sent.slice(before), [], "nothing sent once lost");

    // A background renewal answered LEASE_NOT_HELD.
    const second = await acquireLease(a.client, store, "node", "a", 1_500);
    await other.releaseLease({ storeId: store, name: "node", token: second.token });
    const thief = await acquireLease(other, store, "node", "thief", 60_000);
    const lost = await second.whenLost;
    assert.equal(lost.reason, "not-held");
    assert.ok(lost.cause instanceof ConnectError);
    assert.equal(await second.release(), false);
    await thief.release();
  });
});
