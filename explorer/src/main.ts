// The store explorer: lists a store's keys and versions page by page, shows values,
// follows the store's changes live, and exports, imports and deletes the user's data
// (data.ts), calling vss.v1.VssService through Connect-Web. Requests are signed in the page with
// the pasted private key, or carry the pasted bearer token, and go only to the server
// that serves the page or to one it allows (servers.ts). Given a wallet seed or the keys
// derived from it, it reads stores written with client-side encryption (encryption.ts):
// keys in clear, values decrypted and verified in the page, the seed and keys kept only in
// this module's memory.
import {
  CursorExpiredError,
  VerificationError,
  publicKeyHex,
  watchChanges,
  type Change,
  type Keys,
  type VssAuth,
  type VssClient,
  type WatchStatus,
} from "@govss/vss-client";
import { createWebVssClient } from "@govss/vss-client/web";
import {
  describeView,
  failureText,
  keysFromInput,
  openView,
  showKey,
  signingKeyFromInput,
  verifiedText,
  type KeyInput,
  type ShownKey,
  type View,
} from "./encryption.js";
import { errorText, explainError, isNetworkFailure, probeServer } from "./explain.js";
import { formatValue, hexDump, utf8 } from "./format.js";
import { chooseServer, loadAllowedServers } from "./servers.js";
import { initDataPanel, type Session } from "./data.js";

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`missing element #${id}`);
  }
  return el as T;
}

const form = byId<HTMLFormElement>("connect");
const serverSelect = byId<HTMLSelectElement>("server");
const serverNote = byId<HTMLElement>("server-note");
const loadButton = byId<HTMLButtonElement>("load");
const privateKeyField = byId<HTMLLabelElement>("private-key-field");
const privateKeyInput = byId<HTMLInputElement>("private-key");
const bearerField = byId<HTMLLabelElement>("bearer-token-field");
const bearerInput = byId<HTMLInputElement>("bearer-token");
const userOut = byId<HTMLElement>("user");
const storeInput = byId<HTMLInputElement>("store-id");
const prefixInput = byId<HTMLInputElement>("key-prefix");
const pageSizeInput = byId<HTMLInputElement>("page-size");
const statusOut = byId<HTMLElement>("status");
const listing = byId<HTMLElement>("listing");
const globalVersionOut = byId<HTMLElement>("global-version");
const keysBody = byId<HTMLTableSectionElement>("keys");
const pageNumberOut = byId<HTMLElement>("page-number");
const firstButton = byId<HTMLButtonElement>("first-page");
const prevButton = byId<HTMLButtonElement>("prev-page");
const nextButton = byId<HTMLButtonElement>("next-page");
const refreshButton = byId<HTMLButtonElement>("refresh");
const valueDialog = byId<HTMLDialogElement>("value");
const valueKeyOut = byId<HTMLElement>("value-key");
const valueVersionOut = byId<HTMLElement>("value-version");
const valueSizeOut = byId<HTMLElement>("value-size");
const valueContent = byId<HTMLElement>("value-content");
const valueNote = byId<HTMLElement>("value-note");
const valueStatus = byId<HTMLElement>("value-status");
const valueClose = byId<HTMLButtonElement>("value-close");
const valueCopy = byId<HTMLButtonElement>("value-copy");
const valueDownload = byId<HTMLButtonElement>("value-download");
const utf8Radio = byId<HTMLInputElement>("format-utf8");
const hexRadio = byId<HTMLInputElement>("format-hex");
const changesSection = byId<HTMLElement>("changes");
const watchToggle = byId<HTMLInputElement>("watch");
const watchStateOut = byId<HTMLElement>("watch-state");
const changeRows = byId<HTMLTableSectionElement>("change-rows");
const seedAuthNote = byId<HTMLElement>("seed-auth-note");
const walletSeedField = byId<HTMLLabelElement>("wallet-seed-field");
const walletSeedInput = byId<HTMLInputElement>("wallet-seed");
const dataKeyField = byId<HTMLLabelElement>("data-key-field");
const dataKeyInput = byId<HTMLInputElement>("data-key");
const obfuscationKeyField = byId<HTMLLabelElement>("obfuscation-key-field");
const obfuscationKeyInput = byId<HTMLInputElement>("obfuscation-key");
const encryptionStateOut = byId<HTMLElement>("encryption-state");
const namespaceHead = byId<HTMLElement>("namespace-head");
const valueStoredAs = byId<HTMLElement>("value-stored-as");
const valueStorageKeyOut = byId<HTMLElement>("value-storage-key");
const valueVerify = byId<HTMLElement>("value-verify");
const valueBody = byId<HTMLElement>("value-body");
const valueMeta = byId<HTMLElement>("value-meta");

/**
 * maxPageSize is the most keys a server sends in one page (vss-server's MaxPageSize; the
 * page size input's max, which a Go test checks against it).
 */
const maxPageSize = Number(pageSizeInput.max);

/** maxChangeRows bounds the live panel: older rows drop off the bottom. */
const maxChangeRows = 200;

/** Query the listing is for: fixed when "List keys" is pressed. */
interface Query {
  client: VssClient;
  server: string;
  /** user is who the credentials name, as the page shows it. */
  user: string;
  storeId: string;
  keyPrefix: string | undefined;
  pageSize: number;
  /**
   * keys decrypt the store when encryption is on: derived in the page from what was typed,
   * held here only, never sent or stored.
   */
  keys: Keys | undefined;
  /** view is how the encrypted store is read, once openView found its layout. */
  view?: View;
}

let query: Query | undefined;
/** pageTokens[i] is the token that requests page i; the first page has none. */
let pageTokens: (string | undefined)[] = [undefined];
let page = 0;
let nextToken: string | undefined;
/** shownValue is the value in the dialog; isText says whether it is valid UTF-8. */
let shownValue: { key: string; bytes: Uint8Array; isText: boolean } | undefined;
/** preferredFormat is the format the user last chose; values that are not text show as hex. */
let preferredFormat: "utf8" | "hex" = "utf8";
/** servers are the servers the page may call: its own first (see servers.ts). */
let servers: string[] = [];
/** watching aborts the live watch of the current query, if one runs. */
let watching: AbortController | undefined;

function encryptionMode(): KeyInput["mode"] {
  return (form.querySelector<HTMLInputElement>('input[name="encryption"]:checked')?.value as KeyInput["mode"]) ?? "off";
}

/** keyInput reads the encryption fields. */
function keyInput(): KeyInput {
  const mode = encryptionMode();
  if (mode === "seed") {
    return { mode, walletSeed: walletSeedInput.value };
  }
  if (mode === "keys") {
    return { mode, dataEncryptionKey: dataKeyInput.value, obfuscationMasterKey: obfuscationKeyInput.value };
  }
  return { mode };
}

function updateEncryptionFields(): void {
  const mode = encryptionMode();
  walletSeedField.hidden = mode !== "seed";
  dataKeyField.hidden = mode !== "keys";
  obfuscationKeyField.hidden = mode !== "keys";
}

type AuthMode = "signature" | "bearer" | "seed";

function authMode(): AuthMode {
  return (form.querySelector<HTMLInputElement>('input[name="auth"]:checked')?.value as AuthMode) ?? "signature";
}

function setStatus(text: string, isError = false): void {
  statusOut.textContent = text;
  statusOut.classList.toggle("error", isError);
}

/**
 * failed shows what a failed call of q (a query or a session) was doing and what probably happened; for a
 * failure of the network it first asks whether the server answers at all, to tell a
 * server that is down from one that does not allow this page (CORS).
 */
async function failed(q: { server: string; user: string }, action: string, err: unknown): Promise<string> {
  const reachable = isNetworkFailure(err) ? await probeServer(q.server) : undefined;
  return explainError(err, { action, server: q.server, user: q.user }, location.origin, reachable);
}

/** clearListing empties the listing, so that nothing from an earlier query or a failure stays in view. */
function clearListing(): void {
  keysBody.replaceChildren();
  globalVersionOut.textContent = "—";
  pageNumberOut.textContent = "1";
  nextToken = undefined;
  listing.hidden = true;
  encryptionStateOut.hidden = true;
  namespaceHead.hidden = true;
}

/** credentials reads the pasted key or token and shows whose store is read. */
function credentials(): VssAuth {
  if (authMode() === "bearer") {
    const token = bearerInput.value.trim();
    if (!token) {
      throw new Error("paste a bearer token");
    }
    userOut.textContent = "(the token's subject)";
    return { bearerToken: token };
  }
  if (authMode() === "seed") {
    try {
      const key = signingKeyFromInput(walletSeedInput.value);
      userOut.textContent = publicKeyHex(key);
      return { privateKey: key };
    } catch (err) {
      userOut.textContent = "—";
      throw new Error(`signing with the wallet seed: ${errorText(err)}`, { cause: err });
    }
  }
  const key = privateKeyInput.value.trim();
  try {
    userOut.textContent = publicKeyHex(key);
  } catch (err) {
    userOut.textContent = "—";
    throw new Error(`the private key is not 64 hex characters of a valid secp256k1 key (${errorText(err)})`, { cause: err });
  }
  return { privateKey: key };
}

function updateAuthFields(): void {
  const mode = authMode();
  bearerField.hidden = mode !== "bearer";
  privateKeyField.hidden = mode !== "signature";
  seedAuthNote.hidden = mode !== "seed";
  if (mode === "seed" && encryptionMode() !== "seed") {
    // The one seed both signs and decrypts: ask for it where encryption takes it.
    form.querySelector<HTMLInputElement>('input[name="encryption"][value="seed"]')!.checked = true;
    updateEncryptionFields();
  }
}

/**
 * openEncryptedView finds, once per query, how q's encrypted store is laid out, and says
 * so above the listing; it returns false when that failed (the status says why).
 */
async function openEncryptedView(q: Query): Promise<boolean> {
  if (!q.keys || q.view) {
    return true;
  }
  setStatus(`Opening the encrypted store "${q.storeId}"…`);
  try {
    const view = await openView(q.client, q.keys, q.storeId);
    if (q !== query) {
      return false;
    }
    q.view = view;
    return true;
  } catch (err) {
    const text = err instanceof VerificationError ? `Opening the encrypted store "${q.storeId}": ${failureText(err)}` : await failed(q, `opening the encrypted store "${q.storeId}"`, err);
    if (q === query) {
      clearListing();
      setStatus(text, true);
    }
    return false;
  }
}

/** keyRow renders one key of the listing: in clear when the store is encrypted. */
function keyRow(q: Query, storageKey: string, version: bigint): HTMLTableRowElement {
  const row = document.createElement("tr");
  const shown: ShownKey = q.view ? showKey(q.view, storageKey) : { storageKey, key: storageKey };
  if (q.view?.kind === "ldk") {
    const nsCell = document.createElement("td");
    nsCell.className = "namespace";
    nsCell.textContent = shown.namespace ?? "—";
    row.append(nsCell);
  }
  const keyCell = document.createElement("td");
  if (shown.key !== undefined) {
    const open = document.createElement("button");
    open.type = "button";
    open.className = "key";
    open.textContent = shown.key === "" ? "(empty key)" : shown.key;
    open.dataset.key = shown.key;
    open.dataset.storageKey = storageKey;
    if (shown.namespace !== undefined) {
      open.dataset.namespace = shown.namespace;
    }
    if (q.view) {
      open.title = `Stored as ${storageKey}`;
    }
    open.addEventListener("click", () => void showValue(shown));
    keyCell.append(open);
  } else {
    // A key these keys cannot read: shown as stored, marked, never opened.
    row.className = "unreadable";
    const stored = document.createElement("code");
    stored.className = "storage-key";
    stored.textContent = storageKey;
    const mark = document.createElement("span");
    mark.className = "verify-failed";
    mark.textContent = " cannot be read with these keys (FORMAT)";
    keyCell.title = shown.failure ?? "";
    keyCell.append(stored, mark);
  }
  const versionCell = document.createElement("td");
  versionCell.textContent = version.toString();
  row.append(keyCell, versionCell);
  return row;
}

async function loadPage(): Promise<void> {
  if (!query) {
    return;
  }
  const q = query;
  if (!(await openEncryptedView(q)) || q !== query) {
    return;
  }
  const token = pageTokens[page];
  setStatus(`Listing store "${q.storeId}"…`);
  try {
    const res = await q.client.listKeyVersions({
      storeId: q.storeId,
      keyPrefix: q.keyPrefix,
      pageSize: q.pageSize,
      pageToken: token,
    });
    if (q !== query) {
      return; // a newer query replaced this one
    }
    if (token === undefined) {
      globalVersionOut.textContent = res.globalVersion === undefined ? "—" : res.globalVersion.toString();
    }
    encryptionStateOut.hidden = !q.view;
    encryptionStateOut.textContent = q.view ? describeView(q.view) : "";
    namespaceHead.hidden = q.view?.kind !== "ldk";
    keysBody.replaceChildren(...res.keyVersions.map((kv) => keyRow(q, kv.key, kv.version)));
    nextToken = res.nextPageToken || undefined;
    const capped = nextToken !== undefined && res.keyVersions.length < q.pageSize;
    pageNumberOut.textContent = String(page + 1);
    firstButton.disabled = page === 0;
    prevButton.disabled = page === 0;
    nextButton.disabled = nextToken === undefined;
    listing.hidden = false;
    const n = res.keyVersions.length;
    const unreadable = keysBody.querySelectorAll("tr.unreadable").length;
    setStatus(
      (n === 0 && page === 0
        ? `The store "${q.storeId}" has no keys.`
        : `Page ${page + 1}: ${n} key${n === 1 ? "" : "s"}.` + (capped ? ` The server sends at most ${n} keys a page.` : "")) +
        (unreadable > 0 ? ` ${unreadable} cannot be read with these keys.` : "") +
        (q.keys && prefixInput.value !== "" ? " The key prefix is not used with encryption: stored keys are obfuscated." : ""),
    );
  } catch (err) {
    const text = await failed(q, `listing store "${q.storeId}"`, err);
    if (q === query) {
      clearListing(); // an empty or old table would pass for the store's contents
      if (!watching) {
        changesSection.hidden = true;
      }
      setStatus(text, true);
    }
  }
}

/** label names a key of the listing in messages: its namespace too in an LDK Node store. */
function label(shown: ShownKey): string {
  return shown.namespace !== undefined ? `${shown.namespace}/${shown.key ?? ""}` : (shown.key ?? shown.storageKey);
}

/**
 * readValue reads the value of a listed key: as stored, or decrypted and verified when
 * the store is encrypted (a VerificationError then says why it cannot be trusted).
 */
async function readValue(q: Query, shown: ShownKey): Promise<{ bytes: Uint8Array; version: bigint; verified?: string }> {
  const view = q.view;
  if (!view) {
    const kv = (await q.client.getObject({ storeId: q.storeId, key: shown.storageKey })).value;
    return { bytes: kv?.value ?? new Uint8Array(), version: kv?.version ?? 0n };
  }
  const got =
    view.kind === "plain"
      ? await view.store.get(q.storeId, shown.key ?? "")
      : await view.ldk.get(shown.primaryNamespace ?? "", shown.secondaryNamespace ?? "", shown.key ?? "");
  return { bytes: got.value, version: got.version, verified: verifiedText(view, got.sealedVersion, got.version) };
}

async function showValue(shown: ShownKey): Promise<void> {
  if (!query) {
    return;
  }
  const q = query;
  const name = label(shown);
  setStatus(`Reading ${name}…`);
  try {
    let read: { bytes: Uint8Array; version: bigint; verified?: string } | undefined;
    let failure: string | undefined;
    try {
      read = await readValue(q, shown);
    } catch (err) {
      if (!(err instanceof VerificationError)) {
        throw err;
      }
      failure = failureText(err);
    }
    if (q !== query) {
      return;
    }
    const bytes = read?.bytes ?? new Uint8Array();
    shownValue = read ? { key: shown.key ?? shown.storageKey, bytes, isText: utf8(bytes) !== undefined } : undefined;
    valueKeyOut.textContent = name;
    valueVersionOut.textContent = read?.version.toString() ?? "";
    valueSizeOut.textContent = String(bytes.length);
    valueStoredAs.hidden = !q.view;
    valueStorageKeyOut.textContent = q.view ? shown.storageKey : "";
    valueVerify.hidden = !q.view;
    valueVerify.className = failure ? "verify-failed" : "verify-ok";
    valueVerify.setAttribute("role", failure ? "alert" : "status");
    valueVerify.textContent = failure ?? read?.verified ?? "";
    valueBody.hidden = failure !== undefined;
    valueMeta.hidden = failure !== undefined;
    valueStatus.textContent = "";
    valueContent.textContent = "";
    renderValue();
    if (!valueDialog.open) {
      valueDialog.showModal(); // over the page, where the user is looking, however long the table
    }
    valueContent.scrollTop = 0;
    setStatus(failure ? `Reading ${name} failed verification: nothing of it is shown.` : `Read ${name}.`, failure !== undefined);
  } catch (err) {
    setStatus(await failed(q, `reading key "${name}" of store "${q.storeId}"`, err), true);
  }
}

/**
 * renderValue shows the value in the format the user prefers, or as hex when it is not
 * UTF-8; the format control always shows which format is on screen.
 */
function renderValue(): void {
  if (!shownValue) {
    return;
  }
  const { text, format } = formatValue(shownValue.bytes, shownValue.isText ? preferredFormat : "hex");
  valueContent.textContent = text;
  valueContent.dataset.format = format;
  utf8Radio.checked = format === "utf8";
  hexRadio.checked = format === "hex";
  utf8Radio.disabled = !shownValue.isText;
  valueNote.hidden = shownValue.isText;
}

/** copyValue puts the whole value on the clipboard, as the text or hex dump shown. */
async function copyValue(): Promise<void> {
  if (!shownValue) {
    return;
  }
  const { bytes, isText } = shownValue;
  const text = isText && preferredFormat === "utf8" ? (utf8(bytes) ?? "") : hexDump(bytes);
  try {
    if (!navigator.clipboard) {
      throw new Error("this browser offers the clipboard only to pages on https or localhost");
    }
    await navigator.clipboard.writeText(text);
    valueStatus.textContent = `Copied ${text.length} characters.`;
  } catch (err) {
    valueStatus.textContent = `Could not copy: ${errorText(err)}. Use Download instead.`;
  }
}

/** downloadValue saves the value's bytes, exactly as stored, in a file named after its key. */
function downloadValue(): void {
  if (!shownValue) {
    return;
  }
  const url = URL.createObjectURL(new Blob([shownValue.bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = shownValue.key.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 100) || "value";
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  valueStatus.textContent = `Downloading ${shownValue.bytes.length} bytes as ${a.download}.`;
}

/** showWatchState shows where the live watch stands; state styles it. */
function showWatchState(state: string, text: string): void {
  watchStateOut.dataset.state = state;
  watchStateOut.textContent = text;
}

/** describeStatus turns a watch status into the words of the live panel. */
function describeStatus(status: WatchStatus): [string, string] {
  switch (status.state) {
    case "connecting":
      return ["connecting", status.attempt > 1 ? `Connecting (attempt ${status.attempt})…` : "Connecting…"];
    case "live":
      return ["live", "Live: changes appear as they commit."];
    case "reconnecting":
      return [
        "reconnecting",
        `Connection lost (${errorText(status.error)}); reconnecting in ${(status.delayMs / 1000).toFixed(1)} s from the last change received.`,
      ];
    case "ended":
      return ["off", "Off."];
  }
}

/**
 * changeRow renders one change of the feed as a row of the live panel, its key in clear
 * when the store is encrypted and view reads it.
 */
function changeRow(change: Change, view: View | undefined): HTMLTableRowElement {
  const row = document.createElement("tr");
  const shown = view ? showKey(view, change.key) : undefined;
  row.dataset.key = shown ? (shown.key ?? "") : change.key;
  if (shown) {
    row.dataset.storageKey = change.key;
  }
  row.dataset.version = change.version.toString();
  row.dataset.deleted = String(change.deleted);
  row.dataset.device = change.deviceId;
  row.classList.toggle("deleted", change.deleted);
  const at = change.changedAt ? new Date(Number(change.changedAt.seconds) * 1000 + change.changedAt.nanos / 1e6) : undefined;
  const cells = [
    at ? at.toLocaleTimeString() : "—",
    shown ? (shown.key !== undefined ? label(shown) : `${change.key} (cannot be read with these keys)`) : change.key,
    change.deleted ? "deleted" : "written",
    change.deviceId === "" ? "—" : change.deviceId,
    change.version.toString(),
  ];
  row.append(
    ...cells.map((text) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      return cell;
    }),
  );
  if (at) {
    row.title = at.toISOString();
  }
  return row;
}

/** stopWatching ends the live watch, if one runs. */
function stopWatching(): void {
  watching?.abort();
  watching = undefined;
}

/**
 * startWatching follows the current query's store: it takes the store's latest cursor,
 * refreshes the listing (so that the listing and the feed meet at that cursor), then
 * shows every change after it as it arrives. The watch reconnects by itself; a cursor
 * the server can no longer continue from ends it, and the panel says to list again.
 */
async function startWatching(): Promise<void> {
  stopWatching();
  const q = query;
  if (!q) {
    return;
  }
  const controller = new AbortController();
  watching = controller;
  changeRows.replaceChildren();
  showWatchState("connecting", "Connecting…");
  let cursor: string;
  try {
    cursor = (await q.client.getChangeCursor({ storeId: q.storeId }, { signal: controller.signal })).cursor;
  } catch (err) {
    if (!controller.signal.aborted) {
      showWatchState("error", await failed(q, `watching store "${q.storeId}"`, err));
      watchToggle.checked = false;
    }
    return;
  }
  void loadPage();
  const watcher = watchChanges(q.client, q.storeId, {
    cursor,
    signal: controller.signal,
    onStatus: (status) => {
      if (!controller.signal.aborted) {
        showWatchState(...describeStatus(status));
      }
    },
  });
  try {
    for await (const change of watcher) {
      changeRows.prepend(changeRow(change, q.view));
      while (changeRows.rows.length > maxChangeRows) {
        changeRows.deleteRow(-1);
      }
    }
  } catch (err) {
    if (controller.signal.aborted) {
      return;
    }
    if (err instanceof CursorExpiredError) {
      showWatchState("expired", "The feed can no longer continue from the last change shown: press List keys, then Watch again.");
    } else {
      showWatchState("error", await failed(q, `watching store "${q.storeId}"`, err));
    }
    watchToggle.checked = false;
  } finally {
    if (watching === controller) {
      watching = undefined;
    }
  }
}

watchToggle.addEventListener("change", () => {
  if (watchToggle.checked) {
    void startWatching();
  } else {
    stopWatching();
    showWatchState("off", "Off.");
  }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  // A new query starts from a clean page: nothing of the last one stays in view.
  stopWatching();
  watchToggle.checked = false;
  changeRows.replaceChildren();
  showWatchState("off", "Off.");
  changesSection.hidden = true;
  clearListing();
  closeValue();
  query = undefined;
  pageTokens = [undefined];
  page = 0;
  try {
    const pageSize = Number(pageSizeInput.value);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize) {
      throw new Error(`page size: want a whole number from 1 to ${maxPageSize}, the most keys a server sends in one page`);
    }
    const baseUrl = chooseServer(serverSelect.value, servers);
    if (baseUrl === undefined) {
      throw new Error("choose a server from the list");
    }
    const auth = credentials();
    let keys: Keys | undefined;
    try {
      keys = keysFromInput(keyInput());
    } catch (err) {
      throw new Error(`client-side encryption: ${errorText(err)}`, { cause: err });
    }
    query = {
      client: createWebVssClient(baseUrl, { auth }),
      server: baseUrl,
      user: userOut.textContent ?? "",
      storeId: storeInput.value,
      // Stored keys are obfuscated: a prefix of the key in clear matches nothing.
      keyPrefix: prefixInput.value === "" || keys ? undefined : prefixInput.value,
      pageSize,
      keys,
    };
  } catch (err) {
    setStatus(errorText(err), true);
    return;
  }
  changesSection.hidden = false;
  void loadPage();
});

/**
 * session reads the server and credentials of the form, for the data panel: all of the
 * user's data, whatever the store.
 */
function session(): Session {
  const baseUrl = chooseServer(serverSelect.value, servers);
  if (baseUrl === undefined) {
    throw new Error("choose a server from the list");
  }
  const auth = credentials();
  return { client: createWebVssClient(baseUrl, { auth }), server: baseUrl, user: userOut.textContent ?? "" };
}

initDataPanel({
  session,
  storeId: () => storeInput.value,
  explain: failed,
  changed: (storeId) => {
    // What the listing shows of a store that was deleted or imported is stale.
    if (query && !listing.hidden && (storeId === undefined || storeId === query.storeId)) {
      void loadPage();
    }
  },
});

/** closeValue closes the value dialog and forgets its value. */
function closeValue(): void {
  if (valueDialog.open) {
    valueDialog.close();
  }
  shownValue = undefined;
  valueContent.textContent = "";
}

firstButton.addEventListener("click", () => {
  page = 0;
  void loadPage();
});
prevButton.addEventListener("click", () => {
  if (page > 0) {
    page--;
    void loadPage();
  }
});
nextButton.addEventListener("click", () => {
  if (nextToken !== undefined) {
    pageTokens[page + 1] = nextToken;
    page++;
    void loadPage();
  }
});
refreshButton.addEventListener("click", () => void loadPage());
for (const radio of form.querySelectorAll<HTMLInputElement>('input[name="encryption"]')) {
  radio.addEventListener("change", updateEncryptionFields);
}
for (const radio of form.querySelectorAll<HTMLInputElement>('input[name="auth"]')) {
  radio.addEventListener("change", updateAuthFields);
}
for (const radio of [utf8Radio, hexRadio]) {
  radio.addEventListener("change", () => {
    preferredFormat = radio.value === "hex" ? "hex" : "utf8";
    renderValue();
  });
}
valueClose.addEventListener("click", closeValue);
valueDialog.addEventListener("close", () => {
  shownValue = undefined;
});
valueCopy.addEventListener("click", () => void copyValue());
valueDownload.addEventListener("click", downloadValue);

/** showServers fills the server list and selects the one ?server= asks for, if allowed. */
function showServers(wanted: string | null): void {
  serverSelect.replaceChildren(
    ...servers.map((origin, i) => {
      const option = document.createElement("option");
      option.value = origin;
      option.textContent = i === 0 ? `${origin} (this server)` : origin;
      return option;
    }),
  );
  serverNote.hidden = true;
  if (wanted === null) {
    return;
  }
  const chosen = chooseServer(wanted, servers);
  if (chosen !== undefined) {
    serverSelect.value = chosen;
    return;
  }
  const shown = wanted.length > 100 ? wanted.slice(0, 100) + "…" : wanted;
  serverNote.textContent = `The link asked for the server ${shown}, which this explorer may not call; using ${servers[0]}.`;
  serverNote.hidden = false;
}

// The page calls its own server unless its server allows others; ?server= picks one of
// those, ?store= presets the store id. The form waits for the list.
const params = new URLSearchParams(location.search);
storeInput.value = params.get("store") ?? "";
updateAuthFields();
updateEncryptionFields();
loadButton.disabled = true;
void loadAllowedServers(location.origin).then((allowed) => {
  servers = allowed;
  showServers(params.get("server"));
  loadButton.disabled = false;
});
