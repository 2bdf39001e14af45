// The data panel: all of the user's data at once, with the TypeScript client's dump
// helpers. Export all data downloads a .vssdump file (exportData, checked as it
// arrives); Import a dump sends a file the user picks (importData with the File, read a
// slice at a time), stoppable and resumable under an id derived from the file; Delete
// store and Delete all data show what a dry run counts first, and their buttons work
// only once the store id, or "delete all data", is typed.
import { Code, ConnectError } from "@connectrpc/connect";
import { abortImport, deleteAllData, deleteStore, exportData, importData, type VssClient } from "@govss/vss-client";
import { errorText } from "./explain.js";
import { formatBytes, hex, plural } from "./format.js";

/** Session is who the data panel acts for: a client of the chosen server with the credentials typed. */
export interface Session {
  client: VssClient;
  server: string;
  /** user is who the credentials name, as the page shows it. */
  user: string;
}

/** DataPanelOptions connect the panel to the rest of the page. */
export interface DataPanelOptions {
  /** session reads the form's server and credentials; it throws when they are not usable. */
  session(): Session;
  /** storeId is the store id typed under Store. */
  storeId(): string;
  /** explain turns a failed call into the sentence the page shows. */
  explain(session: Session, action: string, err: unknown): Promise<string>;
  /** changed is called once stores were deleted or imported, to refresh what the page shows of them. */
  changed(storeId?: string): void;
}

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) {
    throw new Error(`missing element #${id}`);
  }
  return el as T;
}

function show(el: HTMLElement, text: string, kind: "" | "ok" | "error" = ""): void {
  el.textContent = text;
  el.classList.toggle("ok", kind === "ok");
  el.classList.toggle("error", kind === "error");
}

/** fileName names an export after its user (the start of the public key) and the day. */
function fileName(user: string): string {
  const day = new Date().toISOString().slice(0, 10);
  return /^[0-9a-f]{16}/.test(user) ? `vss-${user.slice(0, 16)}-${day}.vssdump` : `vss-export-${day}.vssdump`;
}

/** importIdFor derives an import id from a file, the same when the same file is chosen again. */
export function importIdFor(file: { name: string; size: number; lastModified: number }): string {
  const name = file.name.replace(/[^\x20-\x7e]/g, "_").slice(0, 24);
  return `explorer ${file.size} ${file.lastModified} ${name}`.slice(0, 64);
}

/** initDataPanel wires the panel's controls. */
export function initDataPanel(options: DataPanelOptions): void {
  initExport(options);
  initImport(options);
  initDeleteStore(options);
  initDeleteAll(options);
}

function initExport(options: DataPanelOptions): void {
  const start = byId<HTMLButtonElement>("export-start");
  const progress = byId<HTMLProgressElement>("export-progress");
  const status = byId<HTMLElement>("export-status");
  const result = byId<HTMLElement>("export-result");
  start.addEventListener("click", async () => {
    let s: Session;
    try {
      s = options.session();
    } catch (err) {
      show(status, errorText(err), "error");
      return;
    }
    start.disabled = true;
    result.hidden = true;
    progress.hidden = false;
    progress.removeAttribute("value"); // the size is not known ahead
    show(status, "Exporting…");
    try {
      const exp = exportData(s.client, {
        onProgress: (p) => show(status, `Exporting: ${formatBytes(p.bytes)} received, ${plural(p.stores, "store")} and ${plural(p.entries, "entry", "entries")} so far…`),
      });
      const blob = await exp.toBlob();
      const summary = exp.summary!;
      const name = fileName(s.user);
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      byId("export-stores").textContent = String(summary.stores);
      byId("export-entries").textContent = String(summary.entries);
      byId("export-bytes").textContent = `${formatBytes(summary.bytes)} (${summary.bytes} bytes)`;
      byId("export-sha256").textContent = hex(summary.sha256);
      result.hidden = false;
      show(status, `Exported and verified; saved as ${name}.`, "ok");
    } catch (err) {
      show(status, await options.explain(s, "exporting all data", err), "error");
    } finally {
      start.disabled = false;
      progress.hidden = true;
    }
  });
}

function initImport(options: DataPanelOptions): void {
  const file = byId<HTMLInputElement>("import-file");
  const id = byId<HTMLInputElement>("import-id");
  const start = byId<HTMLButtonElement>("import-start");
  const stop = byId<HTMLButtonElement>("import-stop");
  const giveUp = byId<HTMLButtonElement>("import-abort");
  const progress = byId<HTMLProgressElement>("import-progress");
  const status = byId<HTMLElement>("import-status");
  const result = byId<HTMLElement>("import-result");
  let running: AbortController | undefined;
  /** interrupted is the session and id of an import that stopped with something committed. */
  let interrupted: { session: Session; importId: string } | undefined;

  file.addEventListener("change", () => {
    const f = file.files?.[0];
    if (f) {
      id.value = importIdFor(f);
    }
    result.hidden = true;
    show(status, "");
  });

  start.addEventListener("click", async () => {
    const f = file.files?.[0];
    if (!f) {
      show(status, "Choose a dump file first.", "error");
      return;
    }
    let s: Session;
    try {
      s = options.session();
    } catch (err) {
      show(status, errorText(err), "error");
      return;
    }
    const importId = id.value;
    const controller = new AbortController();
    running = controller;
    interrupted = undefined;
    start.disabled = true;
    stop.hidden = false;
    giveUp.hidden = true;
    result.hidden = true;
    progress.hidden = false;
    progress.max = f.size;
    progress.value = 0;
    show(status, `Importing ${f.name}…`);
    try {
      const res = await importData(s.client, f, {
        importId,
        signal: controller.signal,
        onProgress: (p) => {
          progress.value = p.bytes;
          show(status, `Importing: ${formatBytes(p.bytes)} of ${formatBytes(f.size)} committed, ${plural(p.stores, "store")} and ${plural(p.entries, "entry", "entries")} so far…`);
        },
      });
      byId("import-stores").textContent = String(res.stores);
      byId("import-entries").textContent = String(res.entries);
      byId("import-bytes").textContent = `${formatBytes(res.bytes)} (${res.bytes} bytes)`;
      byId("import-sha256").textContent = hex(res.sha256);
      result.hidden = false;
      show(status, `Imported ${f.name}: the server checked every store against the dump's checksums.`, "ok");
      options.changed();
    } catch (err) {
      const code = err instanceof ConnectError ? err.code : undefined;
      if (controller.signal.aborted) {
        show(status, `Stopped at ${formatBytes(progress.value)} of ${formatBytes(f.size)}. Import the same file under the same id to resume, or give the import up.`);
      } else {
        show(status, await options.explain(s, `importing ${f.name}`, err), "error");
      }
      // A bad dump or a store that is not empty leaves nothing; anything else may have
      // left what it committed, to resume or give up.
      if (code !== Code.InvalidArgument && code !== Code.FailedPrecondition && code !== Code.Unauthenticated) {
        interrupted = { session: s, importId };
        giveUp.hidden = false;
      }
    } finally {
      running = undefined;
      start.disabled = false;
      stop.hidden = true;
      progress.hidden = true;
    }
  });

  stop.addEventListener("click", () => running?.abort());

  giveUp.addEventListener("click", async () => {
    if (!interrupted) {
      return;
    }
    const { session, importId } = interrupted;
    giveUp.disabled = true;
    try {
      await abortImport(session.client, importId);
      interrupted = undefined;
      giveUp.hidden = true;
      show(status, `Gave the import "${importId}" up: what it wrote was deleted.`, "ok");
      options.changed();
    } catch (err) {
      show(status, await options.explain(session, `giving the import "${importId}" up`, err), "error");
    } finally {
      giveUp.disabled = false;
    }
  });
}

/**
 * Guarded is a deletion waiting for its confirmation: the session and what it deletes,
 * fixed when the dry run ran.
 */
interface Guarded {
  session: Session;
  /** phrase is what must be typed. */
  phrase: string;
  storeId?: string;
}

/** initGuard wires a dry run, its confirmation and the deletion for one fieldset. */
function initGuard(
  prefix: "delete-store" | "delete-all",
  options: DataPanelOptions,
  dryRun: (s: Session) => Promise<{ guarded: Guarded; counts: string } | { nothing: string }>,
  run: (g: Guarded) => Promise<string>,
  action: (g: Guarded) => string,
): void {
  const check = byId<HTMLButtonElement>(`${prefix}-check`);
  const confirm = byId<HTMLElement>(`${prefix}-confirm`);
  const counts = byId<HTMLElement>(`${prefix}-counts`);
  const typed = byId<HTMLInputElement>(`${prefix}-typed`);
  const go = byId<HTMLButtonElement>(`${prefix}-go`);
  const cancel = byId<HTMLButtonElement>(`${prefix}-cancel`);
  const status = byId<HTMLElement>(`${prefix}-status`);
  let pending: Guarded | undefined;

  const reset = () => {
    pending = undefined;
    confirm.hidden = true;
    typed.value = "";
    go.disabled = true;
  };

  check.addEventListener("click", async () => {
    reset();
    let s: Session;
    try {
      s = options.session();
    } catch (err) {
      show(status, errorText(err), "error");
      return;
    }
    check.disabled = true;
    show(status, "Counting what would be deleted…");
    try {
      const found = await dryRun(s);
      if ("nothing" in found) {
        show(status, found.nothing);
        return;
      }
      pending = found.guarded;
      counts.textContent = found.counts;
      confirm.hidden = false;
      show(status, "");
      typed.focus();
    } catch (err) {
      show(status, await options.explain(s, "counting what would be deleted", err), "error");
    } finally {
      check.disabled = false;
    }
  });

  typed.addEventListener("input", () => {
    go.disabled = pending === undefined || typed.value !== pending.phrase;
  });

  cancel.addEventListener("click", () => {
    reset();
    show(status, "Nothing was deleted.");
  });

  go.addEventListener("click", async () => {
    const g = pending;
    if (!g || typed.value !== g.phrase) {
      return;
    }
    go.disabled = true;
    try {
      const done = await run(g);
      reset();
      show(status, done, "ok");
      options.changed(g.storeId);
    } catch (err) {
      go.disabled = false;
      show(status, await options.explain(g.session, action(g), err), "error");
    }
  });

  // What was counted is for the server, user and store of that moment: editing the form
  // asks for a new count.
  for (const input of document.querySelectorAll<HTMLInputElement | HTMLSelectElement>("#connect input, #connect select")) {
    input.addEventListener("input", () => {
      if (pending) {
        reset();
        show(status, "The form changed: count again.");
      }
    });
  }
}

function initDeleteStore(options: DataPanelOptions): void {
  const prompt = byId<HTMLElement>("delete-store-prompt");
  initGuard(
    "delete-store",
    options,
    async (s) => {
      const storeId = options.storeId();
      const name = JSON.stringify(storeId);
      const dry = await deleteStore(s.client, storeId, { dryRun: true });
      if (dry.keys === 0) {
        return { nothing: `The store ${name} holds nothing: there is nothing to delete.` };
      }
      // The empty store id is a store too; it is confirmed by typing "".
      const phrase = storeId === "" ? '""' : storeId;
      const code = document.createElement("code");
      code.textContent = phrase;
      prompt.replaceChildren("Type ", code, storeId === "" ? " (two double quotes: the store with the empty id) to delete it" : " to delete it");
      return {
        guarded: { session: s, phrase, storeId },
        counts: `The store ${name} of user ${s.user} holds ${plural(dry.keys, "key")} (${formatBytes(dry.bytes)}), its global version counted as one. Deleting it cannot be undone.`,
      };
    },
    async (g) => {
      const res = await deleteStore(g.session.client, g.storeId!);
      return `Deleted the store ${JSON.stringify(g.storeId)}: ${plural(res.keys, "key")}, ${formatBytes(res.bytes)}.`;
    },
    (g) => `deleting store ${JSON.stringify(g.storeId)}`,
  );
}

function initDeleteAll(options: DataPanelOptions): void {
  initGuard(
    "delete-all",
    options,
    async (s) => {
      const dry = await deleteAllData(s.client, { dryRun: true });
      if (dry.stores === 0) {
        return { nothing: "This user has no data on this server: there is nothing to delete." };
      }
      return {
        guarded: { session: s, phrase: "delete all data" },
        counts: `User ${s.user} has ${plural(dry.stores, "store")} with ${plural(dry.keys, "key")} (${formatBytes(dry.bytes)}). Deleting them cannot be undone.`,
      };
    },
    async (g) => {
      const res = await deleteAllData(g.session.client);
      return `Deleted all data: ${plural(res.stores, "store")}, ${plural(res.keys, "key")}, ${formatBytes(res.bytes)}.`;
    },
    () => "deleting all data",
  );
}
