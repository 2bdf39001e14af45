package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import com.google.protobuf.UnsafeByteOperations
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import okio.Buffer
import okio.source
import vss.dump.v1.Dump
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.deleteAllDataRequest
import vss.v1.deleteStoreRequest
import vss.v1.importDataRequest
import java.io.Closeable
import java.io.File
import java.io.InputStream
import java.io.OutputStream
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.time.Duration

/**
 * DumpSummary is what [VssClient.exportData] wrote or [VssClient.importData] imported: a
 * dump (docs/dump-format.md) of [bytes] bytes holding [stores] stores and [entries] keys,
 * whose checksum is [sha256].
 *
 * The checksum covers the content only (store ids, keys, versions, values, global
 * versions, in listing order), not the dump's bytes: two exports of the same data, from
 * two servers, have the same one. A move is proven by comparing the export of the source
 * with the import (or a new export) of the target.
 */
data class DumpSummary(
    /** The size of the dump, in bytes. */
    val bytes: Long,
    /** The number of stores in the dump (its trailer's count). */
    val stores: Long,
    /** The number of keys in the dump, global versions not counted (its trailer's count). */
    val entries: Long,
    /** The dump's checksum, 32 bytes: the SHA-256 its trailer states. */
    val sha256: ByteString,
) {
    /** [sha256] in lower-case hexadecimal. */
    val sha256Hex: String get() = sha256.toByteArray().joinToString("") { "%02x".format(it) }

    override fun toString(): String = "DumpSummary(bytes=$bytes, stores=$stores, entries=$entries, sha256=$sha256Hex)"
}

/**
 * ImportProgress is how far [VssClient.importData] got: the server committed the dump up
 * to [committedBytes], and read [stores] stores and [entries] keys of it so far.
 */
data class ImportProgress(
    /** The offset of the first byte of the dump not yet imported (a record boundary). */
    val committedBytes: Long,
    /** The size of the dump, or -1 when it is read from a stream of unknown length. */
    val totalBytes: Long,
    /** The stores of the dump read so far. */
    val stores: Long,
    /** The keys of the dump read so far. */
    val entries: Long,
)

/** The confirm phrase of `DeleteStore`, followed by the store id. */
internal const val DELETE_STORE_CONFIRM = "delete store "

/** The confirm phrase of `DeleteAllData`. */
internal const val DELETE_ALL_DATA_CONFIRM = "delete all data"

/**
 * The least a chunk at offset 0 carries, unless the dump is shorter: the server must find
 * the dump's header in it, and asks for 4 KiB.
 */
internal const val MIN_FIRST_CHUNK_BYTES = 4096

/** The answers in a row that neither advance nor ask for more before an import gives up. */
private const val MAX_STALLS = 3

/** Returns [id] if it is a valid import id: 1 to 64 printable ASCII characters. */
internal fun checkImportId(id: String) {
    require(id.length in 1..64 && id.all { it in ' '..'~' }) { "importId must be 1 to 64 printable ASCII characters" }
}

// ---------------------------------------------------------------------------------------
// Export

/**
 * Writes the caller's dump to [sink] (see [VssClient.exportData]). A stream that fails
 * before its first chunk is opened again as [policy] says; one that fails later is thrown,
 * since [sink] already holds part of the dump.
 */
internal suspend fun exportDump(
    service: VssServiceClientInterface,
    policy: RetryPolicy,
    sink: OutputStream,
    idleTimeout: Duration,
    onProgress: ((Long) -> Unit)?,
): DumpSummary = withContext(Dispatchers.IO) { exportLoop(service, policy, sink, idleTimeout, onProgress) }

private suspend fun exportLoop(
    service: VssServiceClientInterface,
    policy: RetryPolicy,
    sink: OutputStream,
    idleTimeout: Duration,
    onProgress: ((Long) -> Unit)?,
): DumpSummary {
    var attempt = 1
    while (true) {
        val scanner = DumpScanner()
        var written = 0L
        val failure = exportOnce(service, idleTimeout) { chunk ->
            scanner.feed(chunk) // checks before writing: nothing that is not a dump reaches the sink
            chunk.writeTo(sink)
            written += chunk.size()
            onProgress?.invoke(written)
        }
        currentCoroutineContext().ensureActive()
        if (failure == null) {
            val trailer = scanner.finish()
            sink.flush()
            return DumpSummary(written, trailer.stores, trailer.entries, trailer.sha256)
        }
        if (written > 0 || attempt >= policy.maxAttempts.coerceAtLeast(1) || !retryable(failure, read = true)) throw failure
        backoff(policy, attempt, failure)
        attempt++
    }
}

/**
 * Opens one export stream, hands each chunk to [deliver], and returns how the stream
 * failed, or null when it ended normally. Failures of [deliver] propagate.
 */
private suspend fun exportOnce(
    service: VssServiceClientInterface,
    idleTimeout: Duration,
    deliver: suspend (ByteString) -> Unit,
): Throwable? {
    val stream = try {
        service.exportData()
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        return e
    }
    try {
        val sent = stream.sendAndClose(Vss.ExportDataRequest.getDefaultInstance())
        val channel = stream.responseChannel()
        if (sent.isFailure) {
            // The reason of a failed send is in the response channel, usually at once.
            val reason = withTimeoutOrNull(1_000) { channel.receiveCatching() }
            return reason?.exceptionOrNull() ?: sent.exceptionOrNull()!!
        }
        while (true) {
            val result = withTimeoutOrNull(idleTimeout.toMillis()) { channel.receiveCatching() }
                ?: return ConnectException(Code.DEADLINE_EXCEEDED, "the export sent nothing for $idleTimeout")
            val message = result.getOrNull()
            if (message != null) {
                deliver(message.chunk)
                continue
            }
            val cause = result.exceptionOrNull() ?: return null
            if (cause is CancellationException) currentCoroutineContext().ensureActive()
            return cause
        }
    } finally {
        withContext(NonCancellable) { stream.receiveClose() }
    }
}

/**
 * DumpScanner follows the framing of a dump as it streams by, without holding more than a
 * small record: the magic number, each record's length, and the kind of each record (its
 * first byte, the tag of the `Record.kind` field set). It counts the stores and entries,
 * keeps the trailer, and at the end checks that the dump ended right after its trailer and
 * that the trailer's counts are those of the records. It does not recompute the checksums:
 * the importing server does, against what it stores.
 *
 * With [fromRecordBoundary] it starts at a record instead of at the magic number (the
 * last chunk of an import) and checks no counts.
 */
internal class DumpScanner(private val fromRecordBoundary: Boolean = false) {
    private var magicLeft = if (fromRecordBoundary) 0 else MAGIC.size
    private var length = 0L
    private var lengthBytes = 0
    private var bodyLeft = -1L // -1 while reading a length
    private var tag = -1
    private var body: Buffer? = null
    private var stores = 0L
    private var entries = 0L
    private var trailer: Dump.Trailer? = null
    private var offset = 0L

    fun feed(bytes: ByteString) {
        // A ByteString's bytes are read through its iterator or a copy; a copy of one chunk
        // (1 MiB from the server) is the simplest.
        val b = bytes.toByteArray()
        feed(b, 0, b.size)
    }

    fun feed(b: ByteArray, from: Int, to: Int) {
        var i = from
        while (i < to) {
            if (magicLeft > 0) {
                if (b[i] != MAGIC[MAGIC.size - magicLeft]) fail("the export is not a VSS dump: wrong magic number")
                magicLeft--
                i++
                offset++
                continue
            }
            if (trailer != null) fail("bytes follow the trailer at offset $offset")
            if (bodyLeft < 0) {
                val x = b[i].toInt() and 0xff
                i++
                offset++
                if (lengthBytes == 9 && x > 1) fail("a record length over 64 bits at offset $offset")
                length = length or ((x and 0x7f).toLong() shl (7 * lengthBytes))
                lengthBytes++
                if (x and 0x80 == 0) {
                    bodyLeft = length
                    length = 0
                    lengthBytes = 0
                    tag = -1
                    body = if (bodyLeft <= KEEP_RECORD_BYTES) Buffer() else null
                    if (bodyLeft == 0L) endRecord()
                }
                continue
            }
            val n = minOf(bodyLeft, (to - i).toLong()).toInt()
            if (tag < 0) tag = b[i].toInt() and 0xff
            body?.write(b, i, n)
            i += n
            offset += n
            bodyLeft -= n
            if (bodyLeft == 0L) endRecord()
        }
    }

    private fun endRecord() {
        when (tag) {
            TAG_STORE_BEGIN -> stores++
            TAG_ENTRY -> entries++
            TAG_TRAILER -> {
                val record = body?.let { runCatching { Dump.Record.parseFrom(it.readByteArray()) }.getOrNull() }
                if (record == null || !record.hasTrailer()) fail("a trailer record that does not decode, ending at offset $offset")
                trailer = record.trailer
            }
        }
        bodyLeft = -1
        body = null
        tag = -1
    }

    /** Returns the trailer once the whole dump was fed, or fails if it is not complete. */
    fun finish(): Dump.Trailer {
        if (magicLeft > 0 || bodyLeft >= 0 || lengthBytes > 0) fail("the dump ends inside a record, at offset $offset")
        val t = trailer ?: fail("the dump ends before its trailer, at offset $offset")
        if (!fromRecordBoundary && (t.stores != stores || t.entries != entries)) {
            fail("the trailer states ${t.stores} stores and ${t.entries} entries, the dump holds $stores and $entries")
        }
        return t
    }

    private fun fail(message: String): Nothing = throw ConnectException(Code.DATA_LOSS, message)

    companion object {
        /** 0x89 "VSSDUMP" "\r\n" 0x1A "\n". */
        val MAGIC = byteArrayOf(0x89.toByte(), 'V'.code.toByte(), 'S'.code.toByte(), 'S'.code.toByte(), 'D'.code.toByte(), 'U'.code.toByte(), 'M'.code.toByte(), 'P'.code.toByte(), 0x0D, 0x0A, 0x1A, 0x0A)

        // The first byte of a Record: the tag of its kind, (field number << 3) | 2.
        private const val TAG_STORE_BEGIN = (2 shl 3) or 2
        private const val TAG_ENTRY = (3 shl 3) or 2
        private const val TAG_TRAILER = (5 shl 3) or 2

        /** Records up to this size are kept whole, so that a trailer can be decoded. */
        private const val KEEP_RECORD_BYTES = 64L * 1024
    }
}

// ---------------------------------------------------------------------------------------
// Import

/**
 * DumpSource is where an import reads a dump from, slice by slice at the offsets the
 * server asks for.
 */
internal interface DumpSource : Closeable {
    /** The size of the dump, or -1 while unknown. */
    val size: Long

    /**
     * Returns at most [max] bytes of the dump from [offset] (fewer only at its end), and
     * whether they reach its end.
     */
    fun read(offset: Long, max: Int): Pair<ByteString, Boolean>

    /** Tells that the server committed everything before [offset]: it is not asked again. */
    fun committed(offset: Long)
}

/** FileSource reads a dump from a file, slice by slice, by position. */
internal class FileSource(file: File) : DumpSource {
    private val raf = RandomAccessFile(file, "r")
    private val channel = raf.channel
    override val size: Long = channel.size()

    override fun read(offset: Long, max: Int): Pair<ByteString, Boolean> {
        if (offset > size) throw rewind("the server expects the dump from offset $offset, past its end ($size bytes): is this import id another dump's?")
        val n = minOf(max.toLong(), size - offset).toInt()
        val buf = ByteBuffer.allocate(n)
        while (buf.hasRemaining()) {
            if (channel.read(buf, offset + buf.position()) < 0) throw rewind("the file ended at ${offset + buf.position()} bytes, before its size when opened ($size): it changed during the import")
        }
        return UnsafeByteOperations.unsafeWrap(buf.array()) to (offset + n == size)
    }

    override fun committed(offset: Long) {}

    override fun close() = raf.close()
}

/**
 * StreamSource reads a dump from an [InputStream], holding only what the server has not
 * committed yet (and one byte ahead, to know whether a chunk ends the dump).
 */
internal class StreamSource(input: InputStream) : DumpSource {
    private val source = input.source()
    private val buffer = Buffer()
    private var base = 0L // the offset of buffer's first byte
    private var eof = false

    override val size: Long get() = if (eof) base + buffer.size else -1

    override fun read(offset: Long, max: Int): Pair<ByteString, Boolean> {
        if (offset < base) {
            throw rewind("the server asks for the dump from offset $offset, which the stream no longer holds (it was committed up to $base): send the dump again from its beginning")
        }
        val start = offset - base
        fill(start + max + 1)
        if (start > buffer.size) throw rewind("the server expects the dump from offset $offset, past its end (${base + buffer.size} bytes): is this import id another dump's?")
        val n = minOf(max.toLong(), buffer.size - start)
        val out = Buffer()
        buffer.copyTo(out, start, n)
        return UnsafeByteOperations.unsafeWrap(out.readByteArray()) to (eof && start + n == buffer.size)
    }

    override fun committed(offset: Long) {
        if (offset <= base) return
        fill(offset - base)
        val drop = minOf(offset - base, buffer.size)
        buffer.skip(drop)
        base += drop
    }

    /** Reads until the buffer holds [want] bytes or the stream ends. */
    private fun fill(want: Long) {
        while (!eof && buffer.size < want) {
            if (source.read(buffer, want - buffer.size) == -1L) eof = true
        }
    }

    /** Leaves the caller's stream open. */
    override fun close() {}
}

private fun rewind(message: String) = ConnectException(Code.FAILED_PRECONDITION, message)

/**
 * Whether an import chunk that failed with [e] is sent again: every failure that
 * [retryable] retries for a write, and a rate limit (`RESOURCE_EXHAUSTED` with a
 * `Retry-After`); never a quota (no `Retry-After`: the server gave the import up), a bad
 * dump or a store that is not empty.
 */
private fun retryableImport(e: Throwable): Boolean =
    retryable(e, read = false) || (e is ConnectException && e.code == Code.RESOURCE_EXHAUSTED && retryAfter(e) > Duration.ZERO)

/**
 * Imports the dump of [source] under [importId] (see [VssClient.importData]): sends it in
 * chunks of [chunkBytes] from offset 0, each next chunk from the committed offset the
 * server answered and at least as large as the record it asked for, and retries each chunk
 * as [policy] says.
 */
internal suspend fun importDump(
    service: VssServiceClientInterface,
    policy: RetryPolicy,
    source: DumpSource,
    importId: String,
    chunkBytes: Int,
    onProgress: ((ImportProgress) -> Unit)?,
): DumpSummary {
    checkImportId(importId)
    require(chunkBytes > 0) { "chunkBytes must be positive" }
    return withContext(Dispatchers.IO) { importLoop(service, policy, source, importId, chunkBytes, onProgress) }
}

private suspend fun importLoop(
    service: VssServiceClientInterface,
    policy: RetryPolicy,
    source: DumpSource,
    importId: String,
    chunkBytes: Int,
    onProgress: ((ImportProgress) -> Unit)?,
): DumpSummary {
    var offset = 0L
    var size = maxOf(chunkBytes, MIN_FIRST_CHUNK_BYTES)
    var attempt = 1
    var stalls = 0
    // The previous attempt of this chunk failed in a way that does not tell whether the
    // server applied it.
    var ambiguous = false
    while (true) {
        currentCoroutineContext().ensureActive()
        val (chunk, last) = source.read(offset, size)
        val request = importDataRequest {
            this.importId = importId
            this.offset = offset
            this.chunk = chunk
            this.last = last
        }
        val response = when (val result = service.importData(request)) {
            is ResponseMessage.Success -> result.message
            is ResponseMessage.Failure -> {
                val cause = result.cause
                currentCoroutineContext().ensureActive()
                if (ambiguous && last && cause.code == Code.FAILED_PRECONDITION) {
                    // The answer to the last chunk was lost, and the import is no longer in
                    // progress: it may have completed then. The target's export tells.
                    completedBefore(service, policy, offset, chunk)?.let { return it }
                }
                if (attempt >= policy.maxAttempts.coerceAtLeast(1) || !retryableImport(cause)) throw cause
                backoff(policy, attempt, cause)
                attempt++
                ambiguous = true
                continue
            }
        }
        attempt = 1
        ambiguous = false
        if (response.done) {
            val end = offset + chunk.size()
            onProgress?.invoke(ImportProgress(end, if (source.size >= 0) source.size else end, response.stores, response.entries))
            return DumpSummary(end, response.stores, response.entries, response.sha256)
        }
        val next = response.committedOffset
        val need = response.nextRecordBytes
        if (next == offset && need <= chunk.size()) {
            stalls++
            if (last || stalls >= MAX_STALLS) {
                throw ConnectException(Code.INTERNAL_ERROR, "the import does not advance: the server answered offset $next to a chunk of ${chunk.size()} bytes from there${if (last) " ending the dump" else ""}, without asking for more")
            }
        } else {
            stalls = 0
        }
        if (need > Int.MAX_VALUE - 16) throw ConnectException(Code.RESOURCE_EXHAUSTED, "the server asks for a chunk of $need bytes")
        onProgress?.invoke(ImportProgress(next, source.size, response.stores, response.entries))
        source.committed(next)
        offset = next
        size = maxOf(chunkBytes.toLong(), need, if (next == 0L) MIN_FIRST_CHUNK_BYTES.toLong() else 0L).toInt()
    }
}

/**
 * Returns the summary of the dump whose last chunk [chunk] (from [offset], a record
 * boundary or the dump's start) is, if the caller's stores, exported now, have that dump's
 * checksum: the import completed although its answer was lost. Returns null when they do
 * not, or when that cannot be told.
 */
private suspend fun completedBefore(service: VssServiceClientInterface, policy: RetryPolicy, offset: Long, chunk: ByteString): DumpSummary? {
    val trailer = try {
        DumpScanner(fromRecordBoundary = offset > 0).apply { feed(chunk) }.finish()
    } catch (_: ConnectException) {
        return null
    }
    val target = try {
        exportDump(service, policy, OutputStream.nullOutputStream(), VssClient.DEFAULT_EXPORT_IDLE_TIMEOUT, null)
    } catch (e: CancellationException) {
        throw e
    } catch (_: Exception) {
        return null
    }
    if (target.sha256 != trailer.sha256 || target.stores != trailer.stores || target.entries != trailer.entries) return null
    return DumpSummary(offset + chunk.size(), trailer.stores, trailer.entries, trailer.sha256)
}

/** Gives the import [importId] up (see [VssClient.abortImport]). */
internal suspend fun abortDumpImport(service: VssServiceClientInterface, policy: RetryPolicy, importId: String) {
    checkImportId(importId)
    val request = importDataRequest {
        this.importId = importId
        abort = true
    }
    // Aborting twice deletes nothing more: it is retried like an idempotent call.
    retrying(policy, read = false) { service.importData(request) }.getOrThrow()
}

// ---------------------------------------------------------------------------------------
// Deletes

/** Deletes a store, or reports what it holds (see [VssClient.deleteStore]). */
internal suspend fun deleteOneStore(service: VssServiceClientInterface, policy: RetryPolicy, storeId: String, dryRun: Boolean): Vss.DeleteStoreResponse {
    val request = deleteStoreRequest {
        this.storeId = storeId
        this.dryRun = dryRun
        if (!dryRun) confirm = DELETE_STORE_CONFIRM + storeId
    }
    // A dry run only reads; a delete is made once, as the service declares it.
    val result = if (dryRun) retrying(policy, read = true) { service.deleteStore(request) } else service.deleteStore(request)
    return result.getOrThrow()
}

/** Deletes every store of the caller, or reports what they hold (see [VssClient.deleteAllData]). */
internal suspend fun deleteEveryStore(service: VssServiceClientInterface, policy: RetryPolicy, dryRun: Boolean): Vss.DeleteAllDataResponse {
    val request = deleteAllDataRequest {
        this.dryRun = dryRun
        if (!dryRun) confirm = DELETE_ALL_DATA_CONFIRM
    }
    val result = if (dryRun) retrying(policy, read = true) { service.deleteAllData(request) } else service.deleteAllData(request)
    return result.getOrThrow()
}
