import { Code, ConnectError } from "@connectrpc/connect";
import { backoffDelay, DEFAULT_INITIAL_BACKOFF_MS, retryAfterMs, sleep, transient } from "./backoff.js";
import type { VssClient } from "./client.js";
import { cursorExpired } from "./errors.js";
import type { Change, ListChangesResponse } from "./gen/vss/v1/vss_pb.js";

/**
 * ListChangesOptions select where listChangePages and listAllChanges start and what
 * they ask for.
 */
export interface ListChangesOptions {
  /**
   * cursor is where the feed continues: only changes after it are listed. Empty (the
   * default) means the beginning of the store's feed, which the server refuses with
   * CURSOR_EXPIRED once changes were dropped from it (or were never recorded): take a
   * cursor with getChangeCursor and list the store instead.
   */
  cursor?: string;
  /** pageSize caps each page; the server caps it at 100. */
  pageSize?: number;
  /** includeValues asks for the values of the keys changed. */
  includeValues?: boolean;
  /** signal cancels the listing. */
  signal?: AbortSignal;
}

/**
 * listChangePages pages through the changes of storeId after options.cursor with
 * ListChanges, following next_cursor until the server has no more, and yields each
 * page (its changes in commit order, and nextCursor, the cursor after them). It throws
 * a CursorExpiredError when the server cannot continue from the cursor.
 */
export async function* listChangePages(
  client: VssClient,
  storeId: string,
  options: ListChangesOptions = {},
): AsyncGenerator<ListChangesResponse, void, undefined> {
  let cursor = options.cursor ?? "";
  for (;;) {
    let page: ListChangesResponse;
    try {
      page = await client.listChanges(
        { storeId, cursor, pageSize: options.pageSize ?? 0, includeValues: options.includeValues ?? false },
        { signal: options.signal },
      );
    } catch (err) {
      throw cursorExpired(err, cursor) ?? err;
    }
    yield page;
    if (!page.hasMore) {
      return;
    }
    if (page.nextCursor === cursor || page.nextCursor === "") {
      throw new Error(`the server answered has_more without moving past cursor ${JSON.stringify(cursor)}`);
    }
    cursor = page.nextCursor;
  }
}

/**
 * listAllChanges returns every change of storeId after options.cursor, in commit order,
 * and the cursor after the last of them (options.cursor, or the server's equivalent,
 * when there were none): a device that was offline catches up with it and follows the
 * feed from that cursor. It throws a CursorExpiredError like listChangePages.
 */
export async function listAllChanges(
  client: VssClient,
  storeId: string,
  options: ListChangesOptions = {},
): Promise<{ changes: Change[]; cursor: string }> {
  const changes: Change[] = [];
  let cursor = options.cursor ?? "";
  for await (const page of listChangePages(client, storeId, options)) {
    changes.push(...page.changes);
    cursor = page.nextCursor;
  }
  return { changes, cursor };
}

/** DEFAULT_WATCH_MAX_BACKOFF_MS caps the wait between reconnections of watchChanges. */
export const DEFAULT_WATCH_MAX_BACKOFF_MS = 10_000;

/**
 * DEFAULT_WATCH_IDLE_TIMEOUT_MS is how long watchChanges waits for a message before it
 * takes the connection for dead and reconnects: three of the server's keep-alives
 * (vss-server sends one every 20 s by default, --watch-heartbeat).
 */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 60_000;

/** WatchOptions configure watchChanges. */
export interface WatchOptions {
  /**
   * cursor is where to start: the changes after it are delivered. Empty (the default)
   * means the beginning of the store's feed (see ListChangesOptions.cursor); a new
   * device takes a cursor with getChangeCursor, lists the store, then watches from it.
   */
  cursor?: string;
  /** includeValues asks for the values of the keys changed. */
  includeValues?: boolean;
  /** signal stops the watch: the iteration then ends without an error. */
  signal?: AbortSignal;
  /** initialBackoffMs is the wait before the first reconnection (100 ms by default). */
  initialBackoffMs?: number;
  /** maxBackoffMs caps the wait between reconnections (DEFAULT_WATCH_MAX_BACKOFF_MS). */
  maxBackoffMs?: number;
  /**
   * idleTimeoutMs is how long to wait for the next message of the stream, keep-alives
   * included, before reconnecting (DEFAULT_WATCH_IDLE_TIMEOUT_MS); 0 waits forever.
   * Keep it above the server's --watch-heartbeat.
   */
  idleTimeoutMs?: number;
  /** onStatus is called whenever the watch's state changes; see WatchStatus. */
  onStatus?: (status: WatchStatus) => void;
}

/**
 * WatchState is where a ChangeWatcher stands: "idle" before its iteration starts,
 * "connecting" while a stream opens, "live" once the server answered it (changes arrive
 * as they commit), "reconnecting" while it waits to open the next stream after a
 * failure, and "ended" for good (aborted, the consumer stopped, the cursor expired, or
 * an error that retrying cannot fix).
 */
export type WatchState = "idle" | "connecting" | "live" | "reconnecting" | "ended";

/**
 * WatchStatus is what onStatus receives: the new state, the cursor the watch stands at,
 * and for "connecting" the attempt number since the watch was last live (from 1), for
 * "reconnecting" the failure and the wait before the next attempt, for "ended" the
 * error it ended with, if any.
 */
export type WatchStatus =
  | { state: "connecting"; cursor: string; attempt: number }
  | { state: "live"; cursor: string }
  | { state: "reconnecting"; cursor: string; attempt: number; delayMs: number; error: ConnectError }
  | { state: "ended"; cursor: string; error?: unknown };

/**
 * ChangeWatcher follows a store's change feed; iterate it with for await. It is an
 * iterable of one pass: a second iteration throws.
 */
export class ChangeWatcher implements AsyncIterable<Change> {
  readonly storeId: string;
  readonly #client: VssClient;
  readonly #options: WatchOptions;
  #cursor: string;
  #state: WatchState = "idle";
  #started = false;

  constructor(client: VssClient, storeId: string, options: WatchOptions = {}) {
    this.#client = client;
    this.storeId = storeId;
    this.#options = options;
    this.#cursor = options.cursor ?? "";
  }

  /**
   * cursor is the cursor after the last change the iteration handed out (or after the
   * last keep-alive, which moves it past changes of nothing): watching again from it
   * delivers exactly the changes that follow. Persist it once a change is applied.
   */
  get cursor(): string {
    return this.#cursor;
  }

  /** state is where the watch stands (see WatchState). */
  get state(): WatchState {
    return this.#state;
  }

  [Symbol.asyncIterator](): AsyncIterator<Change> {
    if (this.#started) {
      throw new Error("a ChangeWatcher can be iterated only once");
    }
    this.#started = true;
    return this.#run();
  }

  #set(status: WatchStatus): void {
    this.#state = status.state;
    this.#options.onStatus?.(status);
  }

  async *#run(): AsyncGenerator<Change, void, undefined> {
    const { signal, includeValues = false } = this.#options;
    const initial = this.#options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    const max = this.#options.maxBackoffMs ?? DEFAULT_WATCH_MAX_BACKOFF_MS;
    const idleMs = this.#options.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
    let failures = 0; // since the watch was last live
    let ended = false;
    const end = (error?: unknown) => {
      ended = true;
      this.#set(error === undefined ? { state: "ended", cursor: this.#cursor } : { state: "ended", cursor: this.#cursor, error });
    };
    try {
      for (;;) {
        if (signal?.aborted) {
          end();
          return;
        }
        this.#set({ state: "connecting", cursor: this.#cursor, attempt: failures + 1 });
        // Each stream has its own controller: the idle timer and the end of the
        // iteration close it without touching the caller's signal.
        const stream = new AbortController();
        const forward = () => stream.abort(signal?.reason);
        signal?.addEventListener("abort", forward, { once: true });
        let idle: ReturnType<typeof setTimeout> | undefined;
        let failure: ConnectError;
        try {
          const messages = this.#client
            .watchChanges({ storeId: this.storeId, cursor: this.#cursor, includeValues }, { signal: stream.signal, timeoutMs: 0 })
            [Symbol.asyncIterator]();
          for (;;) {
            if (idleMs > 0) {
              idle = setTimeout(
                () => stream.abort(new ConnectError(`no message from the change stream within ${idleMs} ms`, Code.DeadlineExceeded)),
                idleMs,
              );
            }
            const next = await messages.next();
            clearTimeout(idle);
            if (next.done) {
              break;
            }
            if (this.#state !== "live") {
              failures = 0;
              this.#set({ state: "live", cursor: this.#cursor });
            }
            for (const change of next.value.changes) {
              if (signal?.aborted) {
                break; // hand out nothing more once aborted
              }
              this.#cursor = change.cursor;
              yield change;
            }
            if (signal?.aborted) {
              end();
              return;
            }
            if (next.value.cursor !== "") {
              this.#cursor = next.value.cursor;
            }
          }
          failure = new ConnectError("the server ended the change stream", Code.Unavailable);
        } catch (err) {
          if (signal?.aborted) {
            end();
            return;
          }
          const expired = cursorExpired(err, this.#cursor);
          if (expired) {
            end(expired);
            throw expired;
          }
          // The idle timer's reason, when it fired, says more than the transport's
          // report of the aborted request.
          failure = stream.signal.aborted && stream.signal.reason instanceof ConnectError ? stream.signal.reason : ConnectError.from(err);
          // A stream never conflicts: Connect-Node reports a connection reset in the
          // middle of one as aborted.
          if (!transient(failure) && failure.code !== Code.Aborted) {
            end(failure);
            throw failure;
          }
        } finally {
          clearTimeout(idle);
          signal?.removeEventListener("abort", forward);
          stream.abort(); // closes the stream when the consumer stopped iterating
        }
        // The stream's messages are in order, so the cursor of the last one received
        // is the FeedError's resume_cursor when the server ended the stream.
        failures++;
        const delayMs = Math.max(backoffDelay(failures, initial, max), retryAfterMs(failure));
        this.#set({ state: "reconnecting", cursor: this.#cursor, attempt: failures, delayMs, error: failure });
        try {
          await sleep(delayMs, signal);
        } catch {
          end();
          return;
        }
      }
    } finally {
      if (!ended) {
        end(); // the consumer stopped iterating
      }
    }
  }
}

/**
 * watchChanges follows the change feed of storeId from options.cursor: it delivers
 * every change after the cursor, in commit order, then each new change as soon as it
 * commits. It reconnects by itself, with exponential backoff and jitter, after
 * transport errors, an unavailable or shutting-down server, a slow-consumer cut or the
 * stream limit, resuming from the last cursor it received, so that no change is skipped
 * or delivered twice. The iteration ends without an error when options.signal aborts or
 * the consumer stops iterating, and with a CursorExpiredError when the server cannot
 * continue from the cursor (the application must then list the store again); any other
 * error that retrying cannot fix (unauthenticated, invalid request) ends it as the
 * ConnectError.
 *
 * ```ts
 * const watcher = watchChanges(vss, "wallet", { cursor, signal });
 * for await (const change of watcher) {
 *   apply(change);
 *   saveCursor(watcher.cursor);
 * }
 * ```
 */
export function watchChanges(client: VssClient, storeId: string, options: WatchOptions = {}): ChangeWatcher {
  return new ChangeWatcher(client, storeId, options);
}
