// Moving a user's data between users of a real vss-server, and deleting it: exportData
// from one user, importData as another (from bytes, a Blob, a ReadableStream, an async
// iterable, and an export piped straight in) in chunks far smaller than the largest
// record, through Connect and gRPC from Node and through the Fetch API (Connect and
// gRPC-Web); an import interrupted and resumed, retried through injected failures, given
// up; bad dumps refused with nothing left; deletes with their dry runs.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  DumpFormatError,
  abortImport,
  deleteAllData,
  deleteStore,
  dumpv1,
  exportData,
  importData,
  listKeyVersionPages,
  verifyDump,
  type DumpErrorReason,
  type DumpSource,
  type ImportProgress,
  type VssAuth,
  type VssClient,
  type VssClientOptions,
} from "@govss/vss-client";
import { createNodeVssClient } from "@govss/vss-client/node";
import { createWebVssClient } from "@govss/vss-client/web";
import { startServer, type TestServer } from "./server.js";
import { newKey, rejection } from "./helpers.js";

const encoder = new TextEncoder();

type Factory = (baseUrl: string, auth: VssAuth, options?: VssClientOptions) => VssClient;

const transports: [string, Factory][] = [
  ["node, Connect", (url, auth, o) => createNodeVssClient(url, { ...o, auth })],
  ["node, gRPC", (url, auth, o) => createNodeVssClient(url, { ...o, auth, protocol: "grpc" })],
  ["fetch, Connect", (url, auth, o) => createWebVssClient(url, { ...o, auth })],
  ["fetch, gRPC-Web", (url, auth, o) => createWebVssClient(url, { ...o, auth, protocol: "grpc-web" })],
];
const fetchTransports = transports.filter(([name]) => name.startsWith("fetch"));

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(chunks));
}

/** pieces yields data in pieces of size bytes, as a file or a network stream would. */
async function* pieces(data: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) {
    yield data.slice(i, i + size);
  }
}

/**
 * writeWallet writes a user's data that exercises everything a dump carries, as the Go
 * conformance test does: an empty store id, a global version, versions above 1, a key
 * deleted and created again (which moves it in the listing order), and a value larger
 * than the import chunks.
 */
async function writeWallet(vss: VssClient): Promise<void> {
  const kv = (key: string, version: bigint, value: string) => ({ key, version, value: encoder.encode(value) });
  await vss.putObjects({ storeId: "", transactionItems: [kv("only", 0n, "x")] });
  await vss.putObjects({ storeId: "wallet", globalVersion: 0n, transactionItems: [kv("monitors/a", 0n, "a0"), kv("monitors/b", 0n, "b0"), kv("manager", 0n, "m0")] });
  await vss.putObjects({ storeId: "wallet", globalVersion: 1n, transactionItems: [kv("monitors/a", 1n, "a1")] });
  await vss.putObjects({ storeId: "wallet", transactionItems: [kv("monitors/a", 2n, "a2"), kv("big", 0n, "v".repeat(300 << 10))] });
  await vss.deleteObject({ storeId: "wallet", keyValue: { key: "monitors/b", version: 1n } });
  await vss.putObjects({ storeId: "wallet", transactionItems: [kv("monitors/b", 0n, "b-again"), kv("payments/1", -1n, "p")] });
}

/** exportAll receives the whole export of vss's user. */
async function exportAll(vss: VssClient): Promise<{ data: Uint8Array; sha256: string; stores: number; entries: number }> {
  const exp = exportData(vss);
  const chunks: Uint8Array[] = [];
  for await (const chunk of exp) {
    chunks.push(chunk);
  }
  const summary = exp.summary;
  assert.ok(summary, "an export that ended has a summary");
  return { data: concat(chunks), sha256: hex(summary.sha256), stores: summary.stores, entries: summary.entries };
}

/** listing is a store's keys as ListKeyVersions pages them (two a page), with their versions, and its global version. */
async function listing(vss: VssClient, storeId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const page of listKeyVersionPages(vss, storeId, { pageSize: 2 })) {
    if (page.globalVersion !== undefined) {
      out.push(`global_version@${page.globalVersion}`);
    }
    out.push(...page.keyVersions.map((kv) => `${kv.key}@${kv.version}`));
  }
  return out;
}

/** assertSameData checks that b holds exactly what a holds: checksums, listing order, versions, values. */
async function assertSameData(a: VssClient, b: VssClient, sha256: string, what: string): Promise<void> {
  assert.equal((await exportAll(b)).sha256, sha256, `${what}: the target exports another checksum`);
  for (const store of ["", "wallet"]) {
    assert.deepEqual(await listing(b, store), await listing(a, store), `${what}: store ${JSON.stringify(store)} lists otherwise`);
  }
  const big = await b.getObject({ storeId: "wallet", key: "big" });
  assert.equal(big.value?.value.length, 300 << 10, `${what}: the large value`);
  assert.equal(big.value?.version, 1n);
}

/** recordChunks returns an interceptor that records the size of each ImportData chunk sent. */
function recordChunks(sent: number[]): Interceptor {
  return (next) => async (req) => {
    if (req.method.name === "ImportData" && !req.stream) {
      sent.push((req.message as unknown as { chunk: Uint8Array }).chunk.length);
    }
    return next(req);
  };
}

describe("moving data between users", { timeout: 300_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startServer(["--auth", "signature"]);
  });
  after(async () => {
    await server?.stop();
  });

  const user = (factory: Factory, options?: VssClientOptions) => factory(server.baseUrl, { privateKey: newKey() }, options);

  // Each transport receives the export its own way and sends it back another way.
  const ways: { receive: string; send: string }[] = [
    { receive: "iteration", send: "Uint8Array" },
    { receive: "toBlob", send: "Blob" },
    { receive: "stream()", send: "ReadableStream" },
    { receive: "iteration", send: "async iterable" },
  ];
  transports.forEach(([name, factory], i) => {
    const way = ways[i % ways.length]!;
    it(`exports user A and imports it as user B in small chunks, checksums and listings equal (${name}; ${way.receive}, from a ${way.send})`, async () => {
      const a = user(factory);
      const sent: number[] = []; // the size of each chunk sent
      const b = user(factory, { interceptors: [recordChunks(sent)] });
      await writeWallet(a);

      const exported: number[] = [];
      const exp = exportData(a, { onProgress: (p) => exported.push(p.bytes) });
      let data: Uint8Array;
      let source: DumpSource;
      switch (way.receive) {
        case "toBlob": {
          const blob = await exp.toBlob();
          data = new Uint8Array(await blob.arrayBuffer());
          source = blob;
          break;
        }
        case "stream()": {
          const chunks: Uint8Array[] = [];
          const reader = exp.stream().getReader();
          for (let r = await reader.read(); !r.done; r = await reader.read()) {
            chunks.push(r.value);
          }
          data = concat(chunks);
          source = new ReadableStream<Uint8Array>({
            start(controller) {
              for (let off = 0; off < data.length; off += 333) {
                controller.enqueue(data.slice(off, off + 333));
              }
              controller.close();
            },
          });
          break;
        }
        default: {
          const chunks: Uint8Array[] = [];
          for await (const chunk of exp) {
            chunks.push(chunk);
          }
          data = concat(chunks);
          source = way.send === "Uint8Array" ? data : pieces(data, 4097);
        }
      }
      const summary = exp.summary!;
      assert.equal(summary.stores, 2);
      assert.equal(summary.entries, 6);
      assert.equal(summary.bytes, data.length);
      assert.equal(summary.header.producer, "vss-server");
      assert.equal(summary.header.scope, dumpv1.Scope.USER);
      assert.equal(exported.at(-1), data.length, "the export's progress ends at its size");
      assert.equal(hex((await verifyDump(data)).sha256), hex(summary.sha256));

      const progress: ImportProgress[] = [];
      const res = await importData(b, source, { importId: "move-1", chunkBytes: 1000, onProgress: (p) => progress.push(p) });
      assert.equal(hex(res.sha256), hex(summary.sha256), "the import's checksum is the export's");
      assert.deepEqual([res.stores, res.entries, res.bytes], [2, 6, data.length]);
      // Small chunks, but one as large as the record the server asked for (the 300 KiB value).
      assert.ok(sent.length >= 3, `${sent.length} chunks`);
      assert.equal(sent[0], 4096, "the first chunk holds the header");
      assert.ok(sent.filter((n) => n > 4096).length === 1 && Math.max(...sent) > 300 << 10, `chunks of ${sent.join(", ")} bytes`);
      assert.ok(sent.slice(1).filter((n) => n <= 1000).length >= 1, `chunks of ${sent.join(", ")} bytes`);
      assert.ok(
        progress.every((p, k) => k === 0 || p.bytes >= progress[k - 1]!.bytes),
        "the committed offset never goes back",
      );
      assert.equal(progress.at(-1)!.bytes, data.length);
      assert.equal(progress[0]!.totalBytes, way.send === "Uint8Array" || way.send === "Blob" ? data.length : undefined);
      await assertSameData(a, b, hex(summary.sha256), name);
    });
  });

  it("resumes an interrupted import with the same id, from the same bytes or a new export piped in", async () => {
    for (const [name, factory] of fetchTransports) {
      const a = user(factory);
      const b = user(factory);
      await writeWallet(a);
      const { data, sha256 } = await exportAll(a);

      const controller = new AbortController();
      const before: ImportProgress[] = [];
      const err = await rejection(
        importData(b, data, {
          importId: "resume",
          chunkBytes: 500,
          signal: controller.signal,
          onProgress: (p) => {
            before.push(p);
            if (p.bytes > data.length / 2) {
              controller.abort();
            }
          },
        }),
      );
      assert.equal(err.code, Code.Canceled, `${name}: ${err.message}`);
      const stopped = before.at(-1)!;
      assert.ok(stopped.bytes > data.length / 2 && stopped.bytes < data.length, `${name}: stopped at ${stopped.bytes} of ${data.length}`);
      assert.ok(stopped.stores >= 1, `${name}: a store was complete when it stopped`);

      // What it committed stays, and belongs to that import: another one is refused.
      const other = await rejection(importData(b, data, { importId: "another" }));
      assert.equal(other.code, Code.FailedPrecondition, `${name}: ${other.message}`);

      // Called again (after a reload: the file chosen again) it finishes.
      const res = await importData(b, new Blob([data as Uint8Array<ArrayBuffer>]), { importId: "resume", chunkBytes: 500 });
      assert.equal(hex(res.sha256), sha256, name);
      await assertSameData(a, b, sha256, name);

      // A new export of the same data, piped straight from one user into another, resumes too.
      const c = user(factory);
      const stop = new AbortController();
      await rejection(
        importData(c, exportData(a), { importId: "piped", chunkBytes: 700, signal: stop.signal, onProgress: (p) => p.bytes > 1000 && stop.abort() }),
      );
      const piped = await importData(c, exportData(a), { importId: "piped", chunkBytes: 700 });
      assert.equal(hex(piped.sha256), sha256, name);
      await assertSameData(a, c, sha256, `${name}, piped`);
    }
  });

  it("retries chunks after failures that may pass, including answers lost after the server committed", async () => {
    const a = user(transports[0]![1]);
    await writeWallet(a);
    const { data, sha256 } = await exportAll(a);
    const seen = new Map<string, number>();
    const lossy: Interceptor = (next) => async (req) => {
      const n = (seen.get(req.method.name) ?? 0) + 1;
      seen.set(req.method.name, n);
      if (req.method.name === "ExportData" && n === 1) {
        throw new ConnectError("injected: the export could not start", Code.Unavailable);
      }
      if (req.method.name !== "ImportData") {
        return next(req);
      }
      if (n % 5 === 1) {
        throw new ConnectError("injected: unavailable before sending", Code.Unavailable);
      }
      if (n % 5 === 3) {
        await next(req);
        throw new ConnectError("injected: the answer was lost", Code.Unavailable);
      }
      return next(req);
    };
    for (const [name, factory] of [transports[0]!, fetchTransports[1]!]) {
      seen.clear();
      const b = user(factory, { interceptors: [lossy] });
      const res = await importData(b, data, { importId: "flaky", chunkBytes: 2000, retry: { initialBackoffMs: 5, maxBackoffMs: 20 } });
      assert.equal(hex(res.sha256), sha256, name);
      assert.ok((seen.get("ImportData") ?? 0) >= 5, `${name}: ${seen.get("ImportData")} attempts`);
      // The export is tried again when it fails before its first byte.
      assert.equal((await exportAll(b)).sha256, sha256, name);
      assert.equal(seen.get("ExportData"), 2, name);
      await assertSameData(a, b, sha256, name);
    }

    // The answer to the chunk that ends the dump is lost: the server finished the import
    // and forgot it, so the chunk sent again is refused (the stores are not empty any
    // more). The stores' checksums show that the import completed.
    for (const wholeDump of [false, true]) {
      let lost = 0;
      const loseLast: Interceptor = (next) => async (req) => {
        const isLast = req.method.name === "ImportData" && (req.message as unknown as { last: boolean }).last;
        const n = isLast ? ++lost : 0;
        const res = await next(req);
        if (n === 1) {
          throw new ConnectError("injected: the answer to the last chunk was lost", Code.Unavailable);
        }
        return res;
      };
      const b = user(fetchTransports[0]![1], { interceptors: [loseLast] });
      const res = await importData(b, data, { importId: "lost", chunkBytes: wholeDump ? data.length : 1000, retry: { initialBackoffMs: 5 } });
      assert.equal(hex(res.sha256), sha256, `whole dump in one chunk: ${wholeDump}`);
      assert.deepEqual([res.stores, res.entries, res.bytes], [2, 6, data.length]);
      assert.equal(lost, 2, "the last chunk was sent again");
      await assertSameData(a, b, sha256, "the last answer lost");
      // Into a user whose stores hold other data, the same refusal is an error.
      const other = user(fetchTransports[0]![1], { interceptors: [loseLast] });
      await other.putObjects({ storeId: "wallet", transactionItems: [{ key: "other", version: 0n }] });
      lost = 0;
      const err = await rejection(importData(other, data, { importId: "lost", chunkBytes: wholeDump ? data.length : 1000, retry: { initialBackoffMs: 5 } }));
      assert.equal(err.code, Code.FailedPrecondition, err.message);
    }

    // A failure that retrying cannot fix is thrown at once.
    const refused: Interceptor = () => async () => {
      throw new ConnectError("injected: refused", Code.PermissionDenied);
    };
    const c = user(transports[0]![1], { interceptors: [refused] });
    const err = await rejection(importData(c, data, { importId: "refused", retry: { initialBackoffMs: 5 } }));
    assert.equal(err.code, Code.PermissionDenied);
  });

  it("refuses bad dumps with INVALID_ARGUMENT and leaves nothing behind, and verifyDump says why", async () => {
    for (const [name, factory] of fetchTransports) {
      const a = user(factory);
      await writeWallet(a);
      const { data } = await exportAll(a);
      const flipped = data.slice();
      flipped[Buffer.from(data).indexOf("vvvvvvvv") + 1000]! ^= 0x10; // inside the large value
      const version = data.slice();
      version[16] = 9; // the header's format_version
      const trailing = concat([data, Uint8Array.of(0)]);
      const bad: [string, Uint8Array, DumpErrorReason][] = [
        ["truncated", data.subarray(0, data.length - 10), "truncated"],
        ["flipped-byte", flipped, "checksum"],
        ["wrong-version", version, "version"],
        ["not-a-dump", encoder.encode("PK\x03\x04 a zip file"), "not-dump"],
        ["data-after-the-trailer", trailing, "order"],
      ];
      for (const [what, dump, reason] of bad) {
        const b = user(factory);
        const err = await rejection(importData(b, dump, { importId: "bad", chunkBytes: 2000 }));
        assert.equal(err.code, Code.InvalidArgument, `${name}, ${what}: ${err.message}`);
        assert.match(err.rawMessage, /bad dump, refused \(nothing of it was kept\)/, `${name}, ${what}`);
        const left = await exportAll(b);
        assert.equal(left.stores, 0, `${name}, ${what}: stores left behind`);
        await assert.rejects(verifyDump(dump), (e: unknown) => e instanceof DumpFormatError && e.reason === reason, `${name}, ${what}`);
      }
    }
  });

  it("refuses to import into stores that are not empty, and changes nothing", async () => {
    const a = user(fetchTransports[0]![1]);
    await writeWallet(a);
    const { data, sha256 } = await exportAll(a);
    const err = await rejection(importData(a, data, { importId: "onto-itself" }));
    assert.equal(err.code, Code.FailedPrecondition, err.message);
    assert.match(err.rawMessage, /is not empty/);
    assert.equal((await exportAll(a)).sha256, sha256);
  });

  it("gives an interrupted import up with abortImport: nothing of it is left", async () => {
    const a = user(transports[0]![1]);
    await writeWallet(a);
    const { data, sha256 } = await exportAll(a);
    const b = user(fetchTransports[1]![1]);
    const stop = new AbortController();
    await rejection(importData(b, data, { importId: "given-up", chunkBytes: 500, signal: stop.signal, onProgress: (p) => p.stores > 0 && stop.abort() }));
    assert.ok((await listing(b, "")).includes("only@1"), "the first store was imported before the stop");
    await abortImport(b, "given-up");
    assert.equal((await exportAll(b)).stores, 0);
    await abortImport(b, "given-up"); // nothing to give up: nothing happens
    const res = await importData(b, data, { importId: "given-up" });
    assert.equal(hex(res.sha256), sha256);
  });

  it("deletes a store and all data, after dry runs that delete nothing", async () => {
    for (const [name, factory] of fetchTransports) {
      const a = user(factory);
      await writeWallet(a);
      const before = await exportAll(a);

      // The server refuses a deletion whose confirm phrase is missing: the helpers send it.
      assert.equal((await rejection(a.deleteStore({ storeId: "wallet" }))).code, Code.InvalidArgument, name);
      assert.equal((await rejection(a.deleteStore({ storeId: "wallet", confirm: "delete store " }))).code, Code.InvalidArgument, name);
      assert.equal((await rejection(a.deleteAllData({}))).code, Code.InvalidArgument, name);

      const dry = await deleteStore(a, "wallet", { dryRun: true });
      assert.equal(dry.deleted, false, name);
      assert.equal(dry.keys, 6, `${name}: five keys and the global version`);
      assert.ok(dry.bytes > 300 << 10, `${name}: ${dry.bytes} bytes`);
      assert.equal((await exportAll(a)).sha256, before.sha256, `${name}: the dry run deleted something`);

      assert.deepEqual(await deleteStore(a, "wallet"), { ...dry, deleted: true }, name);
      assert.deepEqual(await listing(a, "wallet"), ["global_version@0"], name);
      assert.equal((await a.getObject({ storeId: "wallet", key: "global_version" })).value?.version, 0n);
      assert.deepEqual(await listing(a, ""), ["global_version@0", "only@1"], `${name}: the other store is kept`);

      const allDry = await deleteAllData(a, { dryRun: true });
      assert.deepEqual(allDry, { stores: 1, keys: 1, bytes: allDry.bytes, deleted: false }, name);
      assert.equal((await exportAll(a)).stores, 1, `${name}: the dry run deleted something`);
      const all = await deleteAllData(a);
      assert.equal(all.deleted, true, name);
      assert.equal(all.keys, 1, name);
      assert.equal((await exportAll(a)).stores, 0, name);
    }
  });
});

describe("verifyDump", () => {
  /** record frames one dump record: its length as a varint, then the message. */
  function record(kind: dumpv1.Record["kind"]): Uint8Array {
    const body = toBinary(dumpv1.RecordSchema, create(dumpv1.RecordSchema, { kind }));
    const len: number[] = [];
    for (let n = body.length; ; n >>>= 7) {
      if (n < 0x80) {
        len.push(n);
        break;
      }
      len.push((n & 0x7f) | 0x80);
    }
    return concat([Uint8Array.from(len), body]);
  }

  /** The known answer of docs/dump-format.md (and of the Go tests). */
  const storeSum = "b78f822367da0750e14ad6912c898891c3ad5a530a56136508b46b8e33c07cd4";
  const dumpSum = "85e77a4687881ac5ca1b0691c972c531b4efd3f4521e58b90a9128fcb3e85bc8";
  function knownDump(trailerSum = dumpSum): Uint8Array {
    const h = create(dumpv1.HeaderSchema, { formatVersion: 1, producer: "test", scope: dumpv1.Scope.USER, versions: true, listingOrder: true, globalVersions: true });
    return concat([
      Uint8Array.of(0x89, ...encoder.encode("VSSDUMP"), 0x0d, 0x0a, 0x1a, 0x0a),
      record({ case: "header", value: h }),
      record({ case: "storeBegin", value: create(dumpv1.StoreBeginSchema, { storeId: "wallet", globalVersion: 2n }) }),
      record({ case: "entry", value: create(dumpv1.EntrySchema, { key: "a", version: 1n, value: encoder.encode("hello") }) }),
      record({ case: "entry", value: create(dumpv1.EntrySchema, { key: "b", version: 5n }) }),
      record({ case: "storeEnd", value: create(dumpv1.StoreEndSchema, { entries: 2n, sha256: Buffer.from(storeSum, "hex") }) }),
      record({ case: "trailer", value: create(dumpv1.TrailerSchema, { stores: 1n, entries: 2n, sha256: Buffer.from(trailerSum, "hex") }) }),
    ]);
  }

  it("computes the checksums of the format's known answer, however the dump is cut", async () => {
    const dump = knownDump();
    for (const source of [dump, new Blob([dump as Uint8Array<ArrayBuffer>]), pieces(dump, 1), pieces(dump, 7)]) {
      const summary = await verifyDump(source);
      assert.equal(hex(summary.sha256), dumpSum);
      assert.deepEqual([summary.stores, summary.entries, summary.bytes, summary.header.producer], [1, 2, dump.length, "test"]);
    }
    const err = await verifyDump(knownDump("00".repeat(32))).catch((e: unknown) => e);
    assert.ok(err instanceof DumpFormatError && err.reason === "checksum", String(err));
    assert.equal(err.record, 6, "the trailer is the sixth record");
    assert.ok((await verifyDump(new Uint8Array()).catch((e: unknown) => e)) instanceof DumpFormatError);
  });
});

describe("larger dumps: what an import holds in memory, a canceled export", { timeout: 120_000 }, () => {
  let server: TestServer;
  let a: VssClient;
  let data: Uint8Array;
  let sha256: string;
  const valueBytes = 4 << 10;
  const chunkBytes = 8 << 10;
  before(async () => {
    server = await startServer(["--auth", "signature"]);
    a = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    for (let batch = 0; batch < 6; batch++) {
      const transactionItems = Array.from({ length: 50 }, (_, i) => ({ key: `k/${batch}/${i}`, version: 0n, value: randomBytes(valueBytes) }));
      await a.putObjects({ storeId: "many", transactionItems });
    }
    ({ data, sha256 } = await exportAll(a));
    assert.ok(data.length > 300 * valueBytes);
  });
  after(async () => {
    await server?.stop();
  });

  it("reads a Blob only in the slices it sends", async () => {
    const blob = new Blob([data as Uint8Array<ArrayBuffer>]);
    const slices: number[] = [];
    const recording = {
      size: blob.size,
      type: "",
      slice: (start?: number, end?: number) => {
        slices.push((end ?? blob.size) - (start ?? 0));
        return blob.slice(start, end);
      },
      arrayBuffer: () => Promise.reject(new Error("the whole file was read")),
    } as unknown as Blob;
    const b = createWebVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    const res = await importData(b, recording, { importId: "blob", chunkBytes });
    assert.equal(hex(res.sha256), sha256);
    assert.ok(slices.length > data.length / chunkBytes, `${slices.length} slices`);
    assert.ok(Math.max(...slices) <= chunkBytes, `a slice of ${Math.max(...slices)} bytes`);
  });

  it("holds a stream only from the offset the server committed", async () => {
    let pulled = 0;
    let committed = 0;
    let ahead = 0;
    const piece = 256;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < data.length; i += piece) {
        ahead = Math.max(ahead, pulled - committed);
        const p = data.slice(i, i + piece);
        pulled += p.length;
        yield p;
      }
    }
    const b = createNodeVssClient(server.baseUrl, { auth: { privateKey: newKey() } });
    const res = await importData(b, source(), { importId: "stream", chunkBytes, onProgress: (p) => (committed = p.bytes) });
    assert.equal(hex(res.sha256), sha256);
    assert.ok(ahead <= chunkBytes + piece, `read ${ahead} bytes past the committed offset, want at most a chunk and a piece`);
  });

  it("ends an export when its signal aborts, and hands out no summary", async () => {
    const controller = new AbortController();
    const exp = exportData(a, { signal: controller.signal });
    let received = 0;
    const err = await (async () => {
      for await (const chunk of exp) {
        received += chunk.length;
        controller.abort();
      }
    })().catch((e: unknown) => e);
    assert.ok(err instanceof ConnectError && err.code === Code.Canceled, String(err));
    assert.ok(received > 0 && received < data.length, `received ${received} of ${data.length} bytes`);
    assert.equal(exp.summary, undefined);
    assert.throws(() => exp[Symbol.asyncIterator](), /only once/);
  });
});
