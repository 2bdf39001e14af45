// The store explorer: lists a store's keys and versions page by page, shows values and
// follows the store's changes live, calling vss.v1.VssService through Connect-Web. Requests are signed in the page with
// the pasted private key, or carry the pasted bearer token, and go only to the server
// that serves the page or to one it allows (servers.ts).
import { Code, ConnectError } from "@connectrpc/connect";
import { CursorExpiredError, publicKeyHex, watchChanges, type Change, type VssAuth, type VssClient, type WatchStatus } from "@govss/vss-client";
import { createWebVssClient } from "@govss/vss-client/web";
import { formatValue } from "./format.js";
import { chooseServer, loadAllowedServers } from "./servers.js";

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
const valueSection = byId<HTMLElement>("value");
const valueKeyOut = byId<HTMLElement>("value-key");
const valueVersionOut = byId<HTMLElement>("value-version");
const valueSizeOut = byId<HTMLElement>("value-size");
const valueContent = byId<HTMLElement>("value-content");
const valueNote = byId<HTMLElement>("value-note");
const changesSection = byId<HTMLElement>("changes");
const watchToggle = byId<HTMLInputElement>("watch");
const watchStateOut = byId<HTMLElement>("watch-state");
const changeRows = byId<HTMLTableSectionElement>("change-rows");

/** maxChangeRows bounds the live panel: older rows drop off the bottom. */
const maxChangeRows = 200;

/** Query the listing is for: fixed when "List keys" is pressed. */
interface Query {
  client: VssClient;
  storeId: string;
  keyPrefix: string | undefined;
  pageSize: number;
}

let query: Query | undefined;
/** pageTokens[i] is the token that requests page i; the first page has none. */
let pageTokens: (string | undefined)[] = [undefined];
let page = 0;
let nextToken: string | undefined;
let shownValue: { key: string; bytes: Uint8Array } | undefined;
/** servers are the servers the page may call: its own first (see servers.ts). */
let servers: string[] = [];
/** watching aborts the live watch of the current query, if one runs. */
let watching: AbortController | undefined;

function authMode(): "signature" | "bearer" {
  return (form.querySelector<HTMLInputElement>('input[name="auth"]:checked')?.value as "signature" | "bearer") ?? "signature";
}

function valueFormat(): "utf8" | "hex" {
  return (document.querySelector<HTMLInputElement>('input[name="format"]:checked')?.value as "utf8" | "hex") ?? "utf8";
}

function setStatus(text: string, isError = false): void {
  statusOut.textContent = text;
  statusOut.classList.toggle("error", isError);
}

function describeError(err: unknown): string {
  if (err instanceof ConnectError) {
    return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
  }
  return err instanceof Error ? err.message : String(err);
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
  const key = privateKeyInput.value.trim();
  userOut.textContent = publicKeyHex(key); // throws for a malformed key
  return { privateKey: key };
}

function updateAuthFields(): void {
  const bearer = authMode() === "bearer";
  bearerField.hidden = !bearer;
  privateKeyField.hidden = bearer;
}

async function loadPage(): Promise<void> {
  if (!query) {
    return;
  }
  const q = query;
  const token = pageTokens[page];
  setStatus("Loading…");
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
    keysBody.replaceChildren(
      ...res.keyVersions.map((kv) => {
        const row = document.createElement("tr");
        const keyCell = document.createElement("td");
        const open = document.createElement("button");
        open.type = "button";
        open.className = "key";
        open.textContent = kv.key;
        open.dataset.key = kv.key;
        open.addEventListener("click", () => void showValue(kv.key));
        keyCell.append(open);
        const versionCell = document.createElement("td");
        versionCell.textContent = kv.version.toString();
        row.append(keyCell, versionCell);
        return row;
      }),
    );
    nextToken = res.nextPageToken || undefined;
    pageNumberOut.textContent = String(page + 1);
    firstButton.disabled = page === 0;
    prevButton.disabled = page === 0;
    nextButton.disabled = nextToken === undefined;
    listing.hidden = false;
    const n = res.keyVersions.length;
    setStatus(n === 0 && page === 0 ? "The store has no keys." : `Page ${page + 1}: ${n} key${n === 1 ? "" : "s"}.`);
  } catch (err) {
    setStatus(describeError(err), true);
  }
}

async function showValue(key: string): Promise<void> {
  if (!query) {
    return;
  }
  setStatus(`Reading ${key}…`);
  try {
    const res = await query.client.getObject({ storeId: query.storeId, key });
    const kv = res.value;
    const bytes = kv?.value ?? new Uint8Array();
    shownValue = { key, bytes };
    valueKeyOut.textContent = key;
    valueVersionOut.textContent = (kv?.version ?? 0n).toString();
    valueSizeOut.textContent = String(bytes.length);
    renderValue();
    valueSection.hidden = false;
    setStatus(`Read ${key}.`);
  } catch (err) {
    setStatus(describeError(err), true);
  }
}

function renderValue(): void {
  if (!shownValue) {
    return;
  }
  const wanted = valueFormat();
  const { text, format } = formatValue(shownValue.bytes, wanted);
  valueContent.textContent = text;
  valueContent.dataset.format = format;
  valueNote.hidden = format === wanted;
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
        `Connection lost (${describeError(status.error)}); reconnecting in ${(status.delayMs / 1000).toFixed(1)} s from the last change received.`,
      ];
    case "ended":
      return ["off", "Off."];
  }
}

/** changeRow renders one change of the feed as a row of the live panel. */
function changeRow(change: Change): HTMLTableRowElement {
  const row = document.createElement("tr");
  row.dataset.key = change.key;
  row.dataset.version = change.version.toString();
  row.dataset.deleted = String(change.deleted);
  row.dataset.device = change.deviceId;
  row.classList.toggle("deleted", change.deleted);
  const at = change.changedAt ? new Date(Number(change.changedAt.seconds) * 1000 + change.changedAt.nanos / 1e6) : undefined;
  const cells = [
    at ? at.toLocaleTimeString() : "—",
    change.key,
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
      showWatchState("error", `Cannot watch: ${describeError(err)}`);
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
      changeRows.prepend(changeRow(change));
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
      showWatchState("error", `Watch stopped: ${describeError(err)}`);
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
  try {
    const pageSize = Number.parseInt(pageSizeInput.value, 10);
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new Error("page size: want a positive number");
    }
    const baseUrl = chooseServer(serverSelect.value, servers);
    if (baseUrl === undefined) {
      throw new Error("choose a server from the list");
    }
    query = {
      client: createWebVssClient(baseUrl, { auth: credentials() }),
      storeId: storeInput.value,
      keyPrefix: prefixInput.value === "" ? undefined : prefixInput.value,
      pageSize,
    };
  } catch (err) {
    setStatus(describeError(err), true);
    return;
  }
  pageTokens = [undefined];
  page = 0;
  valueSection.hidden = true;
  shownValue = undefined;
  stopWatching();
  watchToggle.checked = false;
  changeRows.replaceChildren();
  showWatchState("off", "Off.");
  changesSection.hidden = false;
  void loadPage();
});

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
for (const radio of form.querySelectorAll<HTMLInputElement>('input[name="auth"]')) {
  radio.addEventListener("change", updateAuthFields);
}
for (const radio of document.querySelectorAll<HTMLInputElement>('input[name="format"]')) {
  radio.addEventListener("change", renderValue);
}

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
loadButton.disabled = true;
void loadAllowedServers(location.origin).then((allowed) => {
  servers = allowed;
  showServers(params.get("server"));
  loadButton.disabled = false;
});
