// The explorer in headless Chromium against a real vss-server: served by the server at
// /explorer/, and served from another origin, calling the server through CORS.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { publicKeyHex, type VssClient } from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { chromium, type Browser, type Page } from "playwright-core";
import { startServer, type TestServer } from "../../clients/ts/test/server.js";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// build-test/explorer/test/ holds the compiled test; the build is explorer/dist.
const distDir = fileURLToPath(new URL("../../../dist/", import.meta.url));
const encoder = new TextEncoder();

/** serveDist serves the explorer's build from its own loopback origin. */
async function serveDist(): Promise<{ origin: string; server: Server }> {
  const types: Record<string, string> = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
  };
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
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
  return { origin: `http://127.0.0.1:${port}`, server };
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
  let pages: { origin: string; server: Server };
  let browser: Browser;
  let page: Page;

  before(async () => {
    pages = await serveDist();
    vss = await startServer(["--auth", "signature", "--explorer", "--cors-origins", pages.origin]);
    noCors = await startServer(["--auth", "signature", "--explorer"]);
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
    page = await browser.newPage();
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
    await waitForText(page, "#status", "The store has no keys.");
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
    await page.check('input[name="format"][value="hex"]');
    await waitForText(page, "#value-content", "68 65 6c 6c 6f 20 61 67 61 69 6e");

    await page.click("#first-page");
    await waitForText(page, "#status", "Page 1: 10 keys.");
    await page.check('input[name="format"][value="utf8"]');
    await page.click('#keys button.key[data-key="binary"]');
    await waitForText(page, "#value-content", "ff 00 10");
    assert.equal(await page.getAttribute("#value-content", "data-format"), "hex", "bytes that are not UTF-8 show as hex");
    assert.ok(await page.isVisible("#value-note"));

    // Another key is another user: the same store id is empty for it.
    await signIn(page, vss.baseUrl + "/explorer/", randomBytes(32).toString("hex"), store);
    await waitForText(page, "#status", "The store has no keys.");
  });

  it("reports refused credentials", async () => {
    await page.goto(vss.baseUrl + "/explorer/");
    await page.check('input[name="auth"][value="bearer"]');
    assert.ok(await page.isHidden("#private-key"));
    await page.fill("#bearer-token", "not-a-token");
    await page.click("#load");
    await waitForText(page, "#status", "Unauthenticated");
    assert.ok(await page.locator("#status.error").isVisible());

    await page.check('input[name="auth"][value="signature"]');
    await page.fill("#private-key", "00".repeat(32));
    await page.click("#load");
    await waitForText(page, "#status", "private key");
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
    const pageUrl = (server: TestServer) => `${pages.origin}/?server=${encodeURIComponent(server.baseUrl)}`;
    assert.notEqual(new URL(pages.origin).origin, new URL(vss.baseUrl).origin);

    await signIn(page, pageUrl(vss), key, store);
    await page.locator('#keys button.key[data-key="from-node"]').waitFor();
    assert.equal(await page.evaluate(() => location.origin), pages.origin);
    await page.click('#keys button.key[data-key="from-node"]');
    await waitForText(page, "#value-content", "visible across origins");

    // The same page and data on a server without --cors-origins: the browser blocks it.
    await signIn(page, pageUrl(noCors), key, store);
    await page.locator("#status.error").waitFor();
    assert.equal(await page.locator("#keys button.key").count(), 0);
  });
});
