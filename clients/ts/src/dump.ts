// Moving a user's data between servers, and deleting it: exportData streams the
// caller's stores as a VSS dump (docs/dump-format.md) and checks it as it goes;
// importData sends a dump in resumable chunks from bytes, a Blob or a stream, holding
// only what the server has not committed; deleteStore and deleteAllData send their
// confirm phrases themselves. Nothing here needs Node.js: it runs in browsers too.
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { sha256 } from "@noble/hashes/sha2.js";
import { backoffDelay, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS, retryAfterMs, sleep } from "./backoff.js";
import type { VssClient } from "./client.js";
import { RecordSchema, Scope, type Header, type Record as DumpRecord } from "./gen/vss/dump/v1/dump_pb.js";
import type { ExportDataResponse, ImportDataResponse } from "./gen/vss/v1/vss_pb.js";
import { DEFAULT_MAX_ATTEMPTS, type RetryPolicy } from "./retry.js";

/** DUMP_MAGIC is the 12 bytes every dump starts with: 0x89 "VSSDUMP" CR LF Ctrl-Z LF. */
export const DUMP_MAGIC: Uint8Array = Uint8Array.of(0x89, 0x56, 0x53, 0x53, 0x44, 0x55, 0x4d, 0x50, 0x0d, 0x0a, 0x1a, 0x0a);

/**
 * DEFAULT_MAX_RECORD_BYTES is the largest dump record read by default: a value as large
 * as the server's default request body (64 MiB) with room for its key, as the Go reader.
 */
export const DEFAULT_MAX_RECORD_BYTES = (64 << 20) + (64 << 10);

/** DEFAULT_IMPORT_CHUNK_BYTES is the size of the chunks importData sends (1 MiB). */
export const DEFAULT_IMPORT_CHUNK_BYTES = 1 << 20;

/**
 * FIRST_CHUNK_MIN_BYTES is the least importData sends from offset 0 (unless the dump is
 * shorter): the server needs the dump's header in the first chunk.
 */
const FIRST_CHUNK_MIN_BYTES = 4 << 10;

/** The confirm phrases of DeleteStore (followed by the store id) and DeleteAllData. */
export const DELETE_STORE_CONFIRM = "delete store ";
export const DELETE_ALL_DATA_CONFIRM = "delete all data";

/**
 * DumpErrorReason says what is wrong with a dump, as the Go reader's errors do:
 * "not-dump" (no magic number), "version" (a format version other than 1), "truncated"
 * (it ends before its trailer), "checksum" (a store end or the trailer does not match),
 * "too-large" (a record over the limit), "order" (a record out of place, or bytes after
 * the trailer), "invalid" (a record that does not decode or breaks a rule).
 */
export type DumpErrorReason = "not-dump" | "version" | "truncated" | "checksum" | "too-large" | "order" | "invalid";

/**
 * DumpFormatError is a dump this client refused: the export that exportData received,
 * or the input of verifyDump. offset is the byte offset of the record at fault, record
 * its number (the header is 1).
 */
export class DumpFormatError extends Error {
  override name = "DumpFormatError";
  readonly reason: DumpErrorReason;
  readonly offset: number;
  readonly record: number;

  constructor(reason: DumpErrorReason, offset: number, record: number, detail: string) {
    super(`bad dump (${reason}) at record ${record}, byte ${offset}: ${detail}`);
    this.reason = reason;
    this.offset = offset;
    this.record = record;
  }
}

/** StoreSum is one store of a dump, with its checksum. */
export interface StoreSum {
  /** user is empty in a dump of one user's stores (SCOPE_USER). */
  user: string;
  storeId: string;
  entries: number;
  /** sha256 is the store's checksum (its StoreEnd's), 32 bytes. */
  sha256: Uint8Array;
}

/** DumpSummary describes a complete, verified dump. */
export interface DumpSummary {
  /** header is the dump's header: format version, producer, creation time, scope. */
  header: Header;
  /** stores and entries count what the dump holds (its trailer agrees). */
  stores: number;
  entries: number;
  /** sha256 is the dump's checksum, 32 bytes: the trailer's, computed again here. */
  sha256: Uint8Array;
  /** bytes is the dump's size. */
  bytes: number;
  /** storeSums are its stores, in dump order, with their checksums. */
  storeSums: StoreSum[];
}

const utf8 = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v));
  return b;
}

/** str is a string as the checksums encode it: its UTF-8 length (u32), then its bytes. */
function str(s: string): Uint8Array[] {
  const bytes = utf8.encode(s);
  return [u32(bytes.length), bytes];
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** compareBytes orders byte strings as Go orders strings. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return a[i]! - b[i]!;
    }
  }
  return a.length - b.length;
}

type Hash = ReturnType<typeof sha256.create>;

/**
 * DumpReader reads a dump pushed to it in chunks that end anywhere, checking it as the
 * Go reader does: the framing, the order of records, each store's checksum and count,
 * the trailer, and that nothing follows it. It holds one record at a time.
 */
class DumpReader {
  readonly #max: number;
  #phase: "magic" | "length" | "body" | "done" = "magic";
  /** #offset counts the bytes read; #recordStart is where the record being read began. */
  #offset = 0;
  #recordStart = 0;
  #records = 0;
  #length = 0;
  #lengthBytes = 0;
  #body: Uint8Array | undefined;
  #bodyFill = 0;
  #header: Header | undefined;
  #scope = Scope.UNSPECIFIED;
  /** The store open (#storeHash set), or the last one read, as UTF-8 for ordering. */
  #store: { user: string; id: string; key: Uint8Array[] } | undefined;
  #storeHash: Hash | undefined;
  #storeEntries = 0n;
  #dumpHash: Hash = sha256.create().update(utf8.encode("vss.dump.v1 dump\n"));
  #stores = 0;
  #entries = 0;
  #storeSums: StoreSum[] = [];
  #sha256: Uint8Array | undefined;

  constructor(maxRecordBytes = DEFAULT_MAX_RECORD_BYTES) {
    this.#max = maxRecordBytes;
  }

  get offset(): number {
    return this.#offset;
  }
  get stores(): number {
    return this.#stores;
  }
  get entries(): number {
    return this.#entries;
  }
  get header(): Header | undefined {
    return this.#header;
  }
  get done(): boolean {
    return this.#phase === "done";
  }

  /** summary describes the dump once it was read to its end (see end). */
  summary(): DumpSummary | undefined {
    if (!this.#sha256 || !this.#header) {
      return undefined;
    }
    return {
      header: this.#header,
      stores: this.#stores,
      entries: this.#entries,
      sha256: this.#sha256,
      bytes: this.#offset,
      storeSums: this.#storeSums,
    };
  }

  #fail(reason: DumpErrorReason, detail: string): never {
    throw new DumpFormatError(reason, this.#recordStart, this.#records, detail);
  }

  /** push reads the next bytes of the dump; it throws a DumpFormatError at the first fault. */
  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#phase) {
        case "magic": {
          const at = this.#offset;
          if (chunk[i] !== DUMP_MAGIC[at]) {
            this.#fail("not-dump", "the input does not start with the VSS dump magic number");
          }
          i++;
          this.#offset++;
          if (this.#offset === DUMP_MAGIC.length) {
            this.#startRecord();
          }
          break;
        }
        case "length": {
          const b = chunk[i++]!;
          this.#offset++;
          if (this.#lengthBytes === 9 && b > 1) {
            this.#fail("invalid", "the record length does not fit in 64 bits");
          }
          this.#length += (b & 0x7f) * 2 ** (7 * this.#lengthBytes);
          this.#lengthBytes++;
          if (b < 0x80) {
            if (this.#length > this.#max) {
              this.#fail("too-large", `a record of ${this.#length} bytes, more than the limit of ${this.#max}`);
            }
            this.#phase = "body";
            this.#bodyFill = 0;
            this.#body = undefined;
            if (this.#length === 0) {
              this.#record(new Uint8Array());
            }
          }
          break;
        }
        case "body": {
          const want = this.#length - this.#bodyFill;
          const take = Math.min(want, chunk.length - i);
          if (this.#bodyFill === 0 && take === want) {
            // The whole record is in this chunk: decode it in place.
            this.#offset += take;
            this.#record(chunk.subarray(i, i + take));
          } else {
            this.#body ??= new Uint8Array(this.#length);
            this.#body.set(chunk.subarray(i, i + take), this.#bodyFill);
            this.#bodyFill += take;
            this.#offset += take;
            if (this.#bodyFill === this.#length) {
              const body = this.#body;
              this.#body = undefined;
              this.#record(body);
            }
          }
          i += take;
          break;
        }
        case "done":
          this.#recordStart = this.#offset;
          this.#records++;
          this.#fail("order", "data after the trailer");
      }
    }
  }

  /** end tells that the input ended: it throws unless the dump was complete. */
  end(): void {
    if (this.#phase === "done") {
      return;
    }
    if (this.#phase === "magic") {
      this.#fail(this.#offset === 0 ? "not-dump" : "truncated", "the input ends inside the magic number");
    }
    this.#fail("truncated", "the input ends before the trailer");
  }

  #startRecord(): void {
    this.#phase = "length";
    this.#recordStart = this.#offset;
    this.#records++;
    this.#length = 0;
    this.#lengthBytes = 0;
  }

  #record(body: Uint8Array): void {
    let rec: DumpRecord;
    try {
      rec = fromBinary(RecordSchema, body);
    } catch (err) {
      this.#fail("invalid", `the record does not decode: ${err instanceof Error ? err.message : String(err)}`);
    }
    const kind = rec.kind;
    if (!this.#header && kind.case !== "header") {
      this.#fail("order", "the first record is not a header");
    }
    switch (kind.case) {
      case "header": {
        if (this.#header) {
          this.#fail("order", "a second header");
        }
        const h = kind.value;
        if (h.formatVersion !== 1) {
          this.#fail("version", `format version ${h.formatVersion}, this reader knows 1`);
        }
        if (h.scope !== Scope.USER && h.scope !== Scope.DATABASE) {
          this.#fail("invalid", `unknown scope ${h.scope}`);
        }
        this.#header = h;
        this.#scope = h.scope;
        break;
      }
      case "storeBegin": {
        const s = kind.value;
        if (this.#storeHash) {
          this.#fail("order", `store ${JSON.stringify(s.storeId)} begins before store ${JSON.stringify(this.#store?.id)} ends`);
        }
        const key = [utf8.encode(s.user), utf8.encode(s.storeId)];
        if (this.#store) {
          const c = compareBytes(this.#store.key[0]!, key[0]!) || compareBytes(this.#store.key[1]!, key[1]!);
          if (c >= 0) {
            this.#fail("order", `store (${JSON.stringify(s.user)}, ${JSON.stringify(s.storeId)}) does not follow (${JSON.stringify(this.#store.user)}, ${JSON.stringify(this.#store.id)})`);
          }
        }
        if ((this.#scope === Scope.USER) !== (s.user === "")) {
          this.#fail("invalid", this.#scope === Scope.USER ? "a store of a user dump names a user" : "a store of a database dump has no user");
        }
        if (s.globalVersion !== undefined && s.globalVersion < 0n) {
          this.#fail("invalid", `global version ${s.globalVersion} is negative`);
        }
        this.#store = { user: s.user, id: s.storeId, key };
        this.#storeEntries = 0n;
        this.#storeHash = sha256.create().update(utf8.encode("vss.dump.v1 store\n"));
        for (const part of str(s.storeId)) {
          this.#storeHash.update(part);
        }
        this.#storeHash.update(Uint8Array.of(s.globalVersion === undefined ? 0 : 1)).update(u64(s.globalVersion ?? 0n));
        break;
      }
      case "entry": {
        const e = kind.value;
        if (!this.#storeHash) {
          this.#fail("order", `entry ${JSON.stringify(e.key)} outside a store`);
        }
        if (e.key === "" || e.key === "global_version") {
          this.#fail("invalid", e.key === "" ? "entry: empty key" : 'entry: key "global_version" is reserved for the global version');
        }
        if (e.version < 0n) {
          this.#fail("invalid", `entry: version ${e.version} is negative`);
        }
        for (const part of str(e.key)) {
          this.#storeHash.update(part);
        }
        this.#storeHash.update(u64(e.version)).update(u64(BigInt(e.value.length))).update(e.value);
        this.#storeEntries++;
        this.#entries++;
        break;
      }
      case "storeEnd": {
        const e = kind.value;
        const store = this.#store;
        if (!this.#storeHash || !store) {
          this.#fail("order", "a store end without a store");
        }
        const sum = this.#storeHash.digest();
        if (e.entries !== this.#storeEntries) {
          this.#fail("checksum", `store ${JSON.stringify(store.id)} states ${e.entries} entries, the dump holds ${this.#storeEntries}`);
        }
        if (!equalBytes(e.sha256, sum)) {
          this.#fail("checksum", `store ${JSON.stringify(store.id)}: the entries do not match the store's SHA-256`);
        }
        for (const part of [...str(store.user), ...str(store.id), sum]) {
          this.#dumpHash.update(part);
        }
        this.#storeSums.push({ user: store.user, storeId: store.id, entries: Number(this.#storeEntries), sha256: sum });
        this.#storeHash = undefined;
        this.#stores++;
        break;
      }
      case "trailer": {
        const t = kind.value;
        if (this.#storeHash) {
          this.#fail("order", `the trailer comes before store ${JSON.stringify(this.#store?.id)} ends`);
        }
        if (t.stores !== BigInt(this.#stores) || t.entries !== BigInt(this.#entries)) {
          this.#fail("checksum", `the trailer states ${t.stores} stores and ${t.entries} entries, the dump holds ${this.#stores} and ${this.#entries}`);
        }
        const sum = this.#dumpHash.digest();
        if (!equalBytes(t.sha256, sum)) {
          this.#fail("checksum", "the stores do not match the dump's SHA-256");
        }
        this.#sha256 = sum;
        this.#phase = "done";
        return;
      }
      default:
        this.#fail("invalid", "a record of no kind this reader knows");
    }
    this.#startRecord();
  }
}

/** retryable reports whether a failed call may succeed if sent again (see importData). */
function retryable(err: ConnectError, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted) {
    return false;
  }
  switch (err.code) {
    case Code.Unavailable:
    case Code.Internal:
    case Code.Unknown:
    case Code.DeadlineExceeded:
    case Code.Canceled:
      return true;
    case Code.ResourceExhausted:
      return retryAfterMs(err) > 0; // a rate limit, not a quota
  }
  return false;
}

/** Retrier counts the failures of one step and waits between its attempts. */
class Retrier {
  readonly #max: number;
  readonly #initial: number;
  readonly #maxBackoff: number;
  readonly #signal: AbortSignal | undefined;
  #failures = 0;

  constructor(policy: RetryPolicy = {}, signal?: AbortSignal) {
    this.#max = Math.max(policy.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1);
    this.#initial = policy.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
    this.#maxBackoff = policy.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.#signal = signal;
  }

  /** succeeded starts the count again. */
  succeeded(): void {
    this.#failures = 0;
  }

  /**
   * failed returns err as a ConnectError to throw, or waits (with backoff, at least the
   * server's Retry-After) and returns undefined when another attempt is worth it.
   */
  async failed(err: unknown): Promise<ConnectError | undefined> {
    const ce = this.#signal?.aborted ? ConnectError.from(this.#signal.reason, Code.Canceled) : ConnectError.from(err);
    this.#failures++;
    if (this.#failures >= this.#max || !retryable(ce, this.#signal)) {
      return ce;
    }
    await sleep(Math.max(backoffDelay(this.#failures, this.#initial, this.#maxBackoff), retryAfterMs(ce)), this.#signal);
    return undefined;
  }

  /** run calls call until it succeeds or fails for good. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        const result = await call();
        this.succeeded();
        return result;
      } catch (err) {
        const final = await this.failed(err);
        if (final) {
          throw final;
        }
      }
    }
  }
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw ConnectError.from(signal.reason, Code.Canceled);
  }
}

/** ExportProgress is how far an export got: bytes received, stores and entries read. */
export interface ExportProgress {
  bytes: number;
  stores: number;
  entries: number;
}

/** ExportOptions configure exportData. */
export interface ExportOptions {
  /** signal cancels the export: the iteration then throws a Canceled ConnectError. */
  signal?: AbortSignal;
  /** onProgress is called after each chunk, before it is handed out. */
  onProgress?: (progress: ExportProgress) => void;
  /**
   * retry says how often opening the export is tried when it fails before its first
   * byte (RetryPolicy; the defaults of the client's retries).
   */
  retry?: RetryPolicy;
  /** maxRecordBytes is the largest record accepted (DEFAULT_MAX_RECORD_BYTES). */
  maxRecordBytes?: number;
}

/**
 * DumpExport is a dump being received from the server (see exportData): an async
 * iterable of its bytes, in chunks, of one pass. Each chunk is checked before it is
 * handed out, and the iteration ends normally only once the whole dump was received and
 * verified: its records in order, each store's checksum and count, the trailer's
 * checksum and counts. Any fault ends it with a DumpFormatError, a failed or canceled
 * call with its ConnectError: what was handed out before is then not a dump, so discard
 * it.
 */
export class DumpExport implements AsyncIterable<Uint8Array> {
  readonly #client: VssClient;
  readonly #options: ExportOptions;
  readonly #reader: DumpReader;
  #started = false;
  #ended = false;

  constructor(client: VssClient, options: ExportOptions = {}) {
    this.#client = client;
    this.#options = options;
    this.#reader = new DumpReader(options.maxRecordBytes);
  }

  /** bytes counts the bytes received so far. */
  get bytes(): number {
    return this.#reader.offset;
  }

  /** stores and entries count the complete stores and the entries received so far. */
  get stores(): number {
    return this.#reader.stores;
  }
  get entries(): number {
    return this.#reader.entries;
  }

  /** header is the dump's header, once received. */
  get header(): Header | undefined {
    return this.#reader.header;
  }

  /** summary describes the dump once it was received whole and verified, and is undefined before. */
  get summary(): DumpSummary | undefined {
    return this.#ended ? this.#reader.summary() : undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.#started) {
      throw new Error("a DumpExport can be iterated only once");
    }
    this.#started = true;
    return this.#run();
  }

  /**
   * stream returns the dump as a ReadableStream of its chunks (for Response, pipeTo or
   * a file), with the same checks: the stream errors where the iteration would throw.
   */
  stream(): ReadableStream<Uint8Array> {
    const it = this[Symbol.asyncIterator]();
    return new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const next = await it.next();
          if (next.done) {
            controller.close();
          } else {
            controller.enqueue(next.value);
          }
        },
        async cancel() {
          await it.return?.();
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * toBlob receives the whole dump into a Blob (for a download in a browser, which
   * keeps a large Blob on disk); it rejects as the iteration throws.
   */
  async toBlob(type = "application/octet-stream"): Promise<Blob> {
    const parts: Uint8Array<ArrayBuffer>[] = [];
    for await (const chunk of this) {
      parts.push(chunk as Uint8Array<ArrayBuffer>);
    }
    return new Blob(parts, { type });
  }

  async *#run(): AsyncGenerator<Uint8Array, void, undefined> {
    const { signal, onProgress } = this.#options;
    // The call's own controller closes the stream when the consumer stops iterating.
    const call = new AbortController();
    const forward = () => call.abort(signal?.reason);
    signal?.addEventListener("abort", forward, { once: true });
    if (signal?.aborted) {
      forward();
    }
    const retrier = new Retrier(this.#options.retry, signal);
    try {
      let it: AsyncIterator<ExportDataResponse>;
      let next: IteratorResult<ExportDataResponse>;
      // Before the first byte is handed out an export can start again; after, a new
      // export would be another dump (another header), so a failure ends it.
      for (;;) {
        try {
          it = this.#client.exportData({}, { signal: call.signal })[Symbol.asyncIterator]();
          next = await it.next();
          break;
        } catch (err) {
          const final = await retrier.failed(err);
          if (final) {
            throw final;
          }
        }
      }
      for (;;) {
        if (next.done) {
          break;
        }
        const chunk = next.value.chunk;
        if (chunk.length > 0) {
          this.#reader.push(chunk);
          onProgress?.({ bytes: this.#reader.offset, stores: this.#reader.stores, entries: this.#reader.entries });
          yield chunk;
        }
        try {
          next = await it.next();
        } catch (err) {
          throw signal?.aborted ? ConnectError.from(signal.reason, Code.Canceled) : ConnectError.from(err);
        }
      }
      this.#reader.end();
      this.#ended = true;
    } finally {
      signal?.removeEventListener("abort", forward);
      call.abort();
    }
  }
}

/**
 * exportData exports every store of the client's user as a dump (docs/dump-format.md):
 * each key's version and value as stored (client-encrypted values stay sealed), each
 * store's global version and the listing order, read by the server in one snapshot. It
 * returns a DumpExport: iterate it for the dump's bytes (write them one after the other,
 * to a file or a Blob), or take its stream() or toBlob(). The chunks are checked as they
 * arrive, so a dump that ends the iteration normally is complete and verified, and
 * `summary` then holds its counts and SHA-256 (the number to compare with what
 * importData reports on the other side).
 *
 * ```ts
 * const exp = exportData(vss, { onProgress: (p) => console.log(p.bytes, p.stores, p.entries) });
 * await pipeline(Readable.from(exp), createWriteStream("wallet.vssdump")); // Node.js
 * console.log(bytesToHex(exp.summary!.sha256));
 * ```
 */
export function exportData(client: VssClient, options: ExportOptions = {}): DumpExport {
  return new DumpExport(client, options);
}

/**
 * DumpSource is a dump for importData or verifyDump: its bytes, a Blob (a browser's
 * File), a ReadableStream, or any (async) iterable of byte chunks that end anywhere
 * (a Node.js fs.ReadStream, a DumpExport from another server).
 */
export type DumpSource = Uint8Array | Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Source reads a DumpSource by offset. */
interface Source {
  /** size is the dump's size, when known before reading it. */
  readonly size: number | undefined;
  /** seekable tells that any offset can be read again (bytes and Blobs). */
  readonly seekable: boolean;
  /**
   * read returns up to length bytes from offset (fewer only at the end), and whether
   * they end the dump.
   */
  read(offset: number, length: number): Promise<{ bytes: Uint8Array; last: boolean }>;
  /** commit tells that nothing before offset will be read again. */
  commit(offset: number): void;
  /** close releases the source (ends its iteration). */
  close(): Promise<void>;
}

function isBlob(source: unknown): source is Blob {
  const b = source as Blob;
  return typeof b === "object" && b !== null && typeof b.size === "number" && typeof b.slice === "function" && typeof b.arrayBuffer === "function";
}

function isReadableStream(source: unknown): source is ReadableStream<Uint8Array> {
  return typeof (source as ReadableStream | null)?.getReader === "function";
}

function bytesSource(bytes: Uint8Array): Source {
  return {
    size: bytes.length,
    seekable: true,
    read: async (offset, length) => ({ bytes: bytes.subarray(offset, offset + length), last: offset + length >= bytes.length }),
    commit: () => {},
    close: async () => {},
  };
}

/** blobSource reads only the slices asked for: a large file is never read whole. */
function blobSource(blob: Blob): Source {
  return {
    size: blob.size,
    seekable: true,
    read: async (offset, length) => {
      const end = Math.min(offset + length, blob.size);
      const bytes = offset >= end ? new Uint8Array() : new Uint8Array(await blob.slice(offset, end).arrayBuffer());
      return { bytes, last: end >= blob.size };
    },
    commit: () => {},
    close: async () => {},
  };
}

async function* readStream(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array, void, undefined> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        return;
      }
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * streamSource reads an iterable of chunks, keeping only the chunks that hold bytes not
 * yet committed: what the next request needs, and one chunk of look-ahead to tell
 * whether the dump ends there.
 */
function streamSource(iterable: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Source {
  const it: AsyncIterator<Uint8Array> | Iterator<Uint8Array> =
    Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
  /** held are the chunks kept, each with the offset of its first byte, in order. */
  const held: { at: number; bytes: Uint8Array }[] = [];
  let start = 0; // the offset of the first byte held
  let end = 0; // the offset after the last byte held
  let done = false;
  return {
    size: undefined,
    seekable: false,
    async read(offset, length) {
      if (offset < start) {
        throw new Error(
          `the server asks for the dump from byte ${offset}, which this stream has passed (it holds bytes from ${start} on): ` +
            "call importData again with the dump from its beginning, under the same importId",
        );
      }
      while (!done && end <= offset + length) {
        const next = await it.next();
        if (next.done) {
          done = true;
        } else if (next.value.length > 0) {
          held.push({ at: end, bytes: next.value });
          end += next.value.length;
        }
      }
      const stop = Math.min(offset + length, end);
      const last = done && stop >= end;
      if (offset >= stop) {
        return { bytes: new Uint8Array(), last };
      }
      const first = held.find((c) => c.at + c.bytes.length > offset)!;
      if (first.at + first.bytes.length >= stop) {
        return { bytes: first.bytes.subarray(offset - first.at, stop - first.at), last };
      }
      const out = new Uint8Array(stop - offset);
      for (const c of held) {
        const from = Math.max(offset, c.at);
        const to = Math.min(stop, c.at + c.bytes.length);
        if (from < to) {
          out.set(c.bytes.subarray(from - c.at, to - c.at), from - offset);
        }
      }
      return { bytes: out, last };
    },
    commit(offset) {
      while (held.length > 0 && held[0]!.at + held[0]!.bytes.length <= offset) {
        held.shift();
      }
      start = Math.max(start, Math.min(offset, end));
    },
    async close() {
      if (!done) {
        done = true;
        await it.return?.();
      }
    },
  };
}

function openSource(source: DumpSource): Source {
  if (source instanceof Uint8Array) {
    return bytesSource(source);
  }
  if (isBlob(source)) {
    return blobSource(source);
  }
  if (isReadableStream(source)) {
    return streamSource(readStream(source));
  }
  return streamSource(source);
}

/** checkImportId throws unless id is 1 to 64 printable ASCII characters, what the server accepts. */
export function checkImportId(id: string): void {
  if (!/^[\x20-\x7e]{1,64}$/.test(id)) {
    throw new Error("import id: want 1 to 64 printable ASCII characters");
  }
}

/** ImportProgress is how far an import got. */
export interface ImportProgress {
  /** bytes is the part of the dump the server has committed (its committed_offset). */
  bytes: number;
  /** totalBytes is the dump's size, when the source tells it (bytes, a Blob). */
  totalBytes: number | undefined;
  /** stores and entries count the stores and entries of the dump the server has read. */
  stores: number;
  entries: number;
}

/** ImportOptions configure importData. */
export interface ImportOptions {
  /**
   * importId names the import: 1 to 64 printable ASCII characters that the caller
   * chooses and keeps. Calling importData again with the same id and the same dump (or
   * a new export of the same data) resumes the import: the server reads the dump from
   * its beginning again and writes only what it had not committed.
   */
  importId: string;
  /**
   * chunkBytes is the size of each request's chunk (DEFAULT_IMPORT_CHUNK_BYTES, 1 MiB).
   * The first chunk is at least 4 KiB, so that it holds the dump's header, and a chunk
   * grows to hold a record larger than chunkBytes when the server asks for it. It must
   * stay below the server's request body limit (--max-body-bytes, 64 MiB by default).
   */
  chunkBytes?: number;
  /** onProgress is called after each chunk the server answered. */
  onProgress?: (progress: ImportProgress) => void;
  /**
   * signal stops the import: importData then rejects with a Canceled ConnectError, and
   * what the server committed stays, to be resumed (or given up with abortImport).
   */
  signal?: AbortSignal;
  /** retry says how often a chunk is sent after a failure that may pass (RetryPolicy). */
  retry?: RetryPolicy;
}

/** ImportResult is a complete import, verified by the server. */
export interface ImportResult {
  /** stores and entries count what the dump held. */
  stores: number;
  entries: number;
  /** sha256 is the dump's checksum (its trailer's), which the server checked, 32 bytes. */
  sha256: Uint8Array;
  /** bytes is the dump's size. */
  bytes: number;
}

/**
 * importData imports a dump into the client's user's stores (each must be empty, or
 * hold what an earlier attempt of this import wrote), sending it in chunks with
 * ImportData: each from the offset the server committed up to, at least as large as
 * the record the server asks for. It resolves once the server has imported the whole
 * dump and verified it against what the stores hold.
 *
 * A Blob is read a slice at a time, so a large file is never held in memory; a stream
 * or iterable is held only from the offset the server committed. Failures that may pass
 * (unavailable, internal, unknown, a timed-out attempt, a connection reset, a rate limit
 * with Retry-After) send the chunk again after a backoff (retry); sending a chunk again
 * is safe, since the server answers a chunk it already took with the offset it expects.
 * An attempt that timed out halves the chunks. Should the answer to the chunk that ends
 * the dump be lost, the server has finished and forgotten the import: importData then
 * compares the checksum of each store of the dump, which it reads as it sends it, with an
 * export of the user's stores. When the server asks to start again from the beginning (a
 * conflict), bytes and Blobs are sent again from offset 0, which writes only what was
 * not committed; a stream cannot be, and the error is thrown.
 *
 * It rejects with the server's ConnectError otherwise: INVALID_ARGUMENT for a bad dump
 * (nothing of the import is left), FAILED_PRECONDITION for a store that is not empty
 * (nothing is left either), RESOURCE_EXHAUSTED for a quota. Aborting options.signal
 * leaves what was committed: call importData again with the same importId and the same
 * dump to resume (after a page reload too: choose the same file), or abortImport to give
 * it up.
 */
export async function importData(client: VssClient, source: DumpSource, options: ImportOptions): Promise<ImportResult> {
  const { importId, signal, onProgress } = options;
  checkImportId(importId);
  const chunkBytes = options.chunkBytes ?? DEFAULT_IMPORT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new Error("chunkBytes: want a whole number of bytes, 1 or more");
  }
  /** floor is the least a timed-out attempt shrinks the chunks to. */
  const floor = Math.min(chunkBytes, 64 << 10);
  const src = openSource(source);
  const retrier = new Retrier(options.retry, signal);
  let restarts = 0;
  let stalls = 0; // answers in a row that moved nothing
  // The dump as the server committed it, read here too: should the answer to the chunk
  // that ends the dump be lost, the import may have completed, and the server has
  // forgotten it; the stores' checksums then tell.
  let local: DumpReader | undefined = new DumpReader(Number.MAX_SAFE_INTEGER);
  let fed = 0; // the bytes local has read
  let lastMayHaveLanded = false;
  let stores = 0;
  let entries = 0;
  try {
    let offset = 0;
    let size = chunkBytes; // of the next chunk
    let need = 0; // the size of the record at offset, when the server said it
    for (;;) {
      aborted(signal);
      const { bytes, last } = await src.read(offset, offset === 0 ? Math.max(size, FIRST_CHUNK_MIN_BYTES) : size);
      aborted(signal);
      let res: ImportDataResponse;
      try {
        res = await client.importData({ importId, offset: BigInt(offset), chunk: bytes, last }, { signal });
        retrier.succeeded();
      } catch (err) {
        const ce = ConnectError.from(err);
        if (ce.code === Code.FailedPrecondition && last && lastMayHaveLanded && local && fed === offset && !signal?.aborted) {
          const landed = await completedBefore(client, local, bytes, signal);
          if (landed) {
            onProgress?.({ bytes: landed.bytes, totalBytes: src.size, stores: landed.stores, entries: landed.entries });
            return { stores: landed.stores, entries: landed.entries, sha256: landed.sha256, bytes: landed.bytes };
          }
        }
        if (ce.code === Code.Aborted && src.seekable && restarts < 3 && !signal?.aborted) {
          // The server asks to start again from the beginning (what was committed is
          // skipped, not written again).
          restarts++;
          offset = fed = 0;
          size = chunkBytes;
          need = 0;
          local = new DumpReader(Number.MAX_SAFE_INTEGER);
          continue;
        }
        const final = await retrier.failed(ce);
        if (final) {
          throw final;
        }
        lastMayHaveLanded ||= last;
        if (ce.code === Code.DeadlineExceeded) {
          size = Math.max(Math.floor(size / 2), floor, need);
        }
        continue;
      }
      const next = Number(res.committedOffset);
      // An answer to a chunk at an offset the server did not expect carries no counts.
      stores = Math.max(stores, Number(res.stores));
      entries = Math.max(entries, Number(res.entries));
      const progress: ImportProgress = { bytes: next, totalBytes: src.size, stores, entries };
      if (res.done) {
        onProgress?.(progress);
        return { stores: Number(res.stores), entries: Number(res.entries), sha256: res.sha256, bytes: next };
      }
      if (last && next === offset + bytes.length) {
        throw new ConnectError("the server took the whole dump without finishing the import", Code.Internal);
      }
      if (local && fed === offset && next >= offset && next <= offset + bytes.length) {
        local = feed(local, bytes.subarray(0, next - offset));
        fed = next;
      } else if (fed !== next) {
        local = undefined; // the server jumped elsewhere: this check is off
      }
      need = Number(res.nextRecordBytes);
      stalls = next === offset ? stalls + 1 : 0;
      if (stalls > 30) {
        throw new ConnectError(`the import does not advance past byte ${offset}`, Code.Internal);
      }
      if (next === offset && need <= bytes.length && !last) {
        size = bytes.length * 2; // nothing committed, nothing asked: send more
      } else {
        size = Math.max(chunkBytes, need);
      }
      offset = next;
      src.commit(offset);
      onProgress?.(progress);
    }
  } finally {
    await src.close();
  }
}

/** feed pushes bytes into reader, or returns undefined if it refused them. */
function feed(reader: DumpReader, bytes: Uint8Array): DumpReader | undefined {
  try {
    reader.push(bytes);
    return reader;
  } catch {
    return undefined;
  }
}

/**
 * completedBefore reports whether an earlier attempt of the chunk that ends the dump
 * completed the import although its answer was lost: the dump, read to its end here
 * (local holds all but the last chunk), must be complete, and each of its stores must
 * be in the user's stores with its checksum. It returns the dump's summary if so.
 */
async function completedBefore(client: VssClient, local: DumpReader, lastChunk: Uint8Array, signal: AbortSignal | undefined): Promise<DumpSummary | undefined> {
  let dump: DumpSummary | undefined;
  try {
    local.push(lastChunk);
    local.end();
    dump = local.summary();
  } catch {
    return undefined;
  }
  if (!dump) {
    return undefined;
  }
  const held = exportData(client, { signal });
  for await (const _ of held) {
    // only the checksums are wanted
  }
  const sums = new Map(held.summary!.storeSums.map((s) => [`${s.user}\u0000${s.storeId}`, hexOf(s.sha256)]));
  const all = dump.storeSums.every((s) => sums.get(`${s.user}\u0000${s.storeId}`) === hexOf(s.sha256));
  return all ? dump : undefined;
}

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** CallRetryOptions configure abortImport, deleteStore and deleteAllData. */
export interface CallRetryOptions {
  /** signal cancels the call. */
  signal?: AbortSignal;
  /** retry says how often the call is tried after a failure that may pass (RetryPolicy). */
  retry?: RetryPolicy;
}

/**
 * abortImport gives the import importId up: the server deletes everything it wrote and
 * forgets it. Giving up an import that does not exist (or that completed) does nothing.
 */
export async function abortImport(client: VssClient, importId: string, options: CallRetryOptions = {}): Promise<void> {
  checkImportId(importId);
  await new Retrier(options.retry, options.signal).run(() => client.importData({ importId, abort: true }, { signal: options.signal }));
}

/**
 * verifyDump reads a dump (a file, bytes, a stream) and checks it as the server will:
 * the framing, the order of its records, each store's checksum and count, the trailer,
 * and that nothing follows it. It resolves with its summary (counts and SHA-256), or
 * rejects with a DumpFormatError. A Blob is read a slice at a time.
 */
export async function verifyDump(source: DumpSource, options: { signal?: AbortSignal; maxRecordBytes?: number } = {}): Promise<DumpSummary> {
  const reader = new DumpReader(options.maxRecordBytes);
  const src = openSource(source);
  try {
    for (let offset = 0; ; ) {
      aborted(options.signal);
      const { bytes, last } = await src.read(offset, DEFAULT_IMPORT_CHUNK_BYTES);
      reader.push(bytes);
      offset += bytes.length;
      src.commit(offset);
      if (last) {
        break;
      }
    }
  } finally {
    await src.close();
  }
  reader.end();
  return reader.summary()!;
}

/** DeleteOptions configure deleteStore and deleteAllData. */
export interface DeleteOptions extends CallRetryOptions {
  /**
   * dryRun asks what would be deleted and deletes nothing. A dry run is retried after
   * failures that may pass; a deletion is not (a repeat would report what the first
   * attempt left, nothing).
   */
  dryRun?: boolean;
}

/** DeleteStoreResult is what deleteStore deleted, or for a dry run would delete. */
export interface DeleteStoreResult {
  /** keys counts the store's keys, its global version as one when it was set. */
  keys: number;
  /** bytes is the size of the keys and values. */
  bytes: number;
  /** deleted is true when the store was deleted (false for a dry run). */
  deleted: boolean;
}

/** DeleteAllDataResult is what deleteAllData deleted, or for a dry run would delete. */
export interface DeleteAllDataResult {
  /** stores counts the user's stores, keys their keys (global versions included). */
  stores: number;
  keys: number;
  /** bytes is the size of the keys and values. */
  bytes: number;
  /** deleted is true when the data was deleted (false for a dry run). */
  deleted: boolean;
}

/**
 * deleteStore deletes the store storeId of the client's user: every key, its global
 * version, change feed and leases. It sends the confirm phrase the server requires
 * ("delete store " and the id), so the store to delete is always named by the caller.
 * With dryRun it reports what would be deleted and deletes nothing.
 */
export async function deleteStore(client: VssClient, storeId: string, options: DeleteOptions = {}): Promise<DeleteStoreResult> {
  const dryRun = options.dryRun ?? false;
  const call = () =>
    client.deleteStore({ storeId, dryRun, confirm: dryRun ? "" : DELETE_STORE_CONFIRM + storeId }, { signal: options.signal });
  const res = dryRun ? await new Retrier(options.retry, options.signal).run(call) : await call();
  return { keys: Number(res.keys), bytes: Number(res.bytes), deleted: res.deleted };
}

/**
 * deleteAllData deletes every store of the client's user. It sends the confirm phrase
 * the server requires ("delete all data"). With dryRun it reports what would be
 * deleted and deletes nothing.
 */
export async function deleteAllData(client: VssClient, options: DeleteOptions = {}): Promise<DeleteAllDataResult> {
  const dryRun = options.dryRun ?? false;
  const call = () => client.deleteAllData({ dryRun, confirm: dryRun ? "" : DELETE_ALL_DATA_CONFIRM }, { signal: options.signal });
  const res = dryRun ? await new Retrier(options.retry, options.signal).run(call) : await call();
  return { stores: Number(res.stores), keys: Number(res.keys), bytes: Number(res.bytes), deleted: res.deleted };
}
