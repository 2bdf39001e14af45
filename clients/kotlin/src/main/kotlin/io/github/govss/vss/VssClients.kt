package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.Headers
import com.connectrpc.Interceptor
import com.connectrpc.getOrThrow
import com.connectrpc.ProtocolClientConfig
import com.connectrpc.StreamFunction
import com.connectrpc.StreamResult
import com.connectrpc.UnaryFunction
import com.connectrpc.extensions.GoogleJavaJSONStrategy
import com.connectrpc.extensions.GoogleJavaProtobufStrategy
import com.connectrpc.http.clone
import com.connectrpc.impl.ProtocolClient
import com.connectrpc.okhttp.ConnectOkHttpClient
import com.connectrpc.protocols.NetworkProtocol
import com.connectrpc.ResponseMessage
import com.connectrpc.StreamType
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.withContext
import okhttp3.OkHttpClient
import okhttp3.Protocol
import vss.v1.VssServiceClient
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.acquireLeaseRequest
import java.io.File
import java.io.InputStream
import java.io.OutputStream
import java.time.Duration
import kotlin.time.toKotlinDuration

/**
 * VssClients creates clients of `vss.v1.VssService` that authenticate every request.
 *
 * ```
 * VssClients.create("https://vss.example.com", Credentials.signature(SignatureKey.fromHex(secret))).use { vss ->
 *     val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "k" }).getOrThrow().value
 * }
 * ```
 */
object VssClients {
    /** The deadline of each attempt of a unary call when none is given: 30 s, as in the Go client. */
    @JvmField
    val DEFAULT_TIMEOUT: Duration = Duration.ofSeconds(30)

    /**
     * Returns a client of the VSS server at [baseUrl] (its root, for example
     * `http://127.0.0.1:8080`; the service lives under `/vss.v1.VssService/`).
     *
     * @param credentials adds the `Authorization` header to every request.
     * @param protocol Connect (the default), gRPC-Web, or gRPC. gRPC needs HTTP/2: over
     *   `http://` the client then speaks cleartext HTTP/2 directly.
     * @param json sends JSON instead of binary protobuf.
     * @param httpClient the OkHttp client to derive the transport from (its connection
     *   pool, interceptors, TLS settings); its read and write timeouts are replaced by
     *   [timeout]. Given one, the caller owns it: [VssClient.close] leaves it running.
     *   Without one, the client makes its own, and [VssClient.close] shuts it down.
     * @param timeout the deadline of each attempt of a unary call ([DEFAULT_TIMEOUT], 30 s,
     *   as in the Go client). Streams (`watchChanges`) have none: [VssClient.watchChanges]
     *   notices a dead stream by the server's keep-alives instead.
     * @param deviceId names this device in the `vss-device-id` header of every write
     *   (`putObjects`, `deleteObject`): each change those writes make carries it in the feed,
     *   so that the device can recognise its own writes. 1 to 120 printable ASCII
     *   characters; null sends none.
     * @param retry how calls that the service declares free of side effects or idempotent
     *   (`getObject`, `listKeyVersions`, `deleteObject`, `listChanges`, `getChangeCursor`,
     *   `releaseLease`, `getLease`, and their blocking twins) are retried after failures that
     *   may pass, and how a [VssLease] spaces its renewal attempts. `putObjects`,
     *   `acquireLease` and `renewLease` are made once. It also says how often
     *   [VssClient.importData] sends a chunk again (each chunk has its own attempts), how
     *   often [VssClient.exportData] opens its stream again before the first chunk, and how
     *   [VssClient.abortImport] and the dry runs of [VssClient.deleteStore] and
     *   [VssClient.deleteAllData] are retried; the deletes themselves are made once.
     *   [RetryPolicy.NONE] turns retries off.
     */
    @JvmStatic
    @JvmOverloads
    fun create(
        baseUrl: String,
        credentials: Credentials,
        protocol: NetworkProtocol = NetworkProtocol.CONNECT,
        json: Boolean = false,
        httpClient: OkHttpClient? = null,
        timeout: Duration = DEFAULT_TIMEOUT,
        deviceId: String? = null,
        retry: RetryPolicy = RetryPolicy.DEFAULT,
    ): VssClient {
        require(baseUrl.startsWith("http://") || baseUrl.startsWith("https://")) {
            "baseUrl must be an http:// or https:// URL, got $baseUrl"
        }
        deviceId?.let(::checkDeviceId)
        val callTimeout = timeout.toKotlinDuration()
        val base = httpClient ?: OkHttpClient()
        val builder = ConnectOkHttpClient.configureClient(base.newBuilder())
        if (protocol == NetworkProtocol.GRPC && baseUrl.startsWith("http://")) {
            builder.protocols(listOf(Protocol.H2_PRIOR_KNOWLEDGE))
        }
        val config = ProtocolClientConfig(
            host = baseUrl.trimEnd('/'),
            serializationStrategy = if (json) GoogleJavaJSONStrategy() else GoogleJavaProtobufStrategy(),
            networkProtocol = protocol,
            interceptors = listOfNotNull(
                { AuthInterceptor(credentials) },
                deviceId?.let { id -> { DeviceInterceptor(id) } },
                // Last: the first of ours to see a stream's response (see StreamStatusInterceptor).
                { c -> StreamStatusInterceptor(c.serializationStrategy.errorDetailParser()) },
            ),
            ioCoroutineContext = Dispatchers.IO,
            timeoutOracle = { method -> if (method.streamType == StreamType.UNARY) callTimeout else null },
        )
        val http = builder.build()
        return VssClient(
            VssServiceClient(RetryingProtocolClient(ProtocolClient(ConnectOkHttpClient(http), config), retry)), http, owned = httpClient == null,
            deviceId = deviceId, retry = retry,
        )
    }
}

/**
 * VssClient is a client of `vss.v1.VssService` (every call of [VssServiceClientInterface])
 * that can be closed. [close] stops the threads and connections of the OkHttp client it
 * made for itself, so that a program ends as soon as its work is done rather than when
 * OkHttp's idle threads time out (about a minute); calls made after [close] fail. An OkHttp
 * client passed to [VssClients.create] belongs to the caller and is left running.
 */
class VssClient internal constructor(
    private val service: VssServiceClientInterface,
    internal val http: OkHttpClient,
    private val owned: Boolean,
    /** The device id this client's writes carry (`vss-device-id`), or null. */
    val deviceId: String?,
    /** How calls free of side effects or idempotent are retried (see [VssClients.create]). */
    val retry: RetryPolicy,
) : VssServiceClientInterface by service, AutoCloseable {
    /**
     * Follows the change feed of [storeId] from [cursor] (from `getChangeCursor`, or the
     * cursor of the last batch a device applied), live: a cold [Flow] of [ChangeBatch]es,
     * each the changes of one stream message and the cursor after them, the first one (maybe
     * empty) as soon as the stream is open and caught up.
     *
     * The flow reconnects by itself after transport errors, an unreachable or restarting
     * server (`UNAVAILABLE`, reason `SHUTTING_DOWN`), a stream the server cut because it was
     * not read in time (`SLOW_CONSUMER`) or a stream limit, and a stream that sent nothing,
     * not even a keep-alive, for [idleTimeout] (the server sends one every 20 s by default).
     * It waits between attempts as [reconnect] says, with jitter, and resumes after the last
     * batch it delivered, so that no change is delivered twice or skipped. It ends with
     * [CursorExpiredException] when the server can no longer continue from the cursor (the
     * device must list the store again), and with the `ConnectException` of any failure that
     * retrying cannot fix (`UNAUTHENTICATED`, `INVALID_ARGUMENT`), or after
     * `reconnect.maxAttempts` connections in a row failed when that is not 0. Cancelling the
     * collector closes the stream.
     *
     * @param includeValues asks for the values of the keys (see `Change.value`).
     * @param listener hears every failure the flow recovers from.
     */
    @JvmOverloads
    fun watchChanges(
        storeId: String,
        cursor: String,
        includeValues: Boolean = false,
        reconnect: RetryPolicy = RetryPolicy.WATCH,
        idleTimeout: Duration = DEFAULT_WATCH_IDLE_TIMEOUT,
        listener: RetryListener? = null,
    ): Flow<ChangeBatch> {
        require(!idleTimeout.isNegative && !idleTimeout.isZero) { "idleTimeout must be positive" }
        return watchFlow(service, storeId, cursor, includeValues, reconnect, idleTimeout, listener)
    }

    /**
     * Pages through the change feed of [storeId] after [cursor] up to its current end: a cold
     * [Flow] with one [ChangeBatch] per page, the last one (maybe empty) carrying the cursor
     * to continue from. Each page is retried as [retry] says; the flow ends with
     * [CursorExpiredException] when the server can no longer continue from the cursor, and
     * with the `ConnectException` of other failures.
     *
     * @param pageSize caps the changes of a page; 0 takes the server's cap (100).
     */
    @JvmOverloads
    fun listChanges(storeId: String, cursor: String, includeValues: Boolean = false, pageSize: Int = 0): Flow<ChangeBatch> =
        listFlow(service, storeId, cursor, includeValues, pageSize)

    /**
     * Lists every page of keys from [request] on (its page size applies to each page) and
     * returns them as one response: all keys in the server's order, newest created first,
     * the global version of the first page (present when [request] has no page token), and
     * no next page token. Each page is retried like every `listKeyVersions`.
     *
     * @throws com.connectrpc.ConnectException when a page fails, or when the server answers
     *   a page token twice.
     */
    suspend fun listAll(request: Vss.ListKeyVersionsRequest): Vss.ListKeyVersionsResponse = listAllPages(service, request)

    /**
     * Acquires the lease [name] on [storeId] for [ttl] (1 s to 1 h) and returns it as a
     * [VssLease], which renews itself until released or lost and writes under it.
     *
     * @param holder tells others who hold the lease (`getLease`, [LeaseHeldException]);
     *   defaults to this client's [deviceId].
     * @param onLost hears once that the lease was lost (not when it is released), on the
     *   thread that noticed: the renewals' background thread, or a writer's.
     * @throws LeaseHeldException when another holder has the lease.
     * @throws com.connectrpc.ConnectException on any other failure. Acquiring is not
     *   retried: after an ambiguous failure the lease may be granted to this holder already
     *   (`getLease` tells).
     */
    suspend fun acquireLease(
        storeId: String,
        name: String,
        holder: String = deviceId ?: "",
        ttl: Duration,
        onLost: ((LeaseLostException) -> Unit)? = null,
    ): VssLease {
        require(ttl >= MIN_LEASE_TTL && ttl <= MAX_LEASE_TTL) { "ttl must be between 1 s and 1 h, got $ttl" }
        val request = acquireLeaseRequest {
            this.storeId = storeId
            this.name = name
            this.holder = holder
            this.ttl = com.google.protobuf.Duration.newBuilder().setSeconds(ttl.seconds).setNanos(ttl.nano).build()
        }
        val sentAt = System.nanoTime()
        return when (val result = service.acquireLease(request)) {
            is ResponseMessage.Success -> VssLease(this, result.message.lease, sentAt, ttl, onLost)
            is ResponseMessage.Failure -> {
                val detail = result.cause.feedError()
                if (detail?.reason == Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_HELD) throw LeaseHeldException(detail.lease, result.cause)
                throw result.cause
            }
        }
    }

    /**
     * Writes a dump of every store of the caller (docs/dump-format.md) to [sink] and returns
     * what it holds: its size, its stores and keys, and its checksum. The server reads the
     * dump in one consistent snapshot, with each key's version and value as stored, each
     * store's global version and the listing order, and streams it in chunks that this
     * writes to [sink] one after the other (on `Dispatchers.IO`); [sink] is flushed, not
     * closed. The framing is checked as it goes: the magic number, and a trailer whose counts
     * match the records, right at the end. The checksums are checked by the server that
     * imports the dump.
     *
     * A stream that fails before its first chunk is opened again as [retry] says. One that
     * fails later is thrown, [sink] then holding part of a dump: start again with an empty
     * sink. Cancelling the calling coroutine closes the stream.
     *
     * @param idleTimeout how long to wait for the next chunk before the stream is taken for
     *   dead ([DEFAULT_EXPORT_IDLE_TIMEOUT], 60 s): streams have no deadline.
     * @param onProgress hears the number of bytes written after each chunk.
     * @throws com.connectrpc.ConnectException when the export fails (`DATA_LOSS` for a
     *   stream that is not a complete dump).
     */
    suspend fun exportData(
        sink: OutputStream,
        idleTimeout: Duration = DEFAULT_EXPORT_IDLE_TIMEOUT,
        onProgress: ((Long) -> Unit)? = null,
    ): DumpSummary {
        require(!idleTimeout.isNegative && !idleTimeout.isZero) { "idleTimeout must be positive" }
        return exportDump(service, retry, sink, idleTimeout, onProgress)
    }

    /**
     * Imports the dump in [file] into the caller's stores, reading it slice by slice (never
     * whole), and returns what the server imported and verified: the dump's size, its stores
     * and keys, and its checksum, which equals the exporting server's.
     *
     * Each store of the dump must be empty here when its import begins; versions, global
     * versions and listing order are kept. The dump goes in chunks of [chunkBytes] (the first
     * at least 4 KiB, as the server asks), one `ImportData` call each: each next chunk starts
     * where the server says it committed, and holds at least the record the server asks for
     * when a chunk cut it. A chunk that fails in a way that may pass is sent again as [retry]
     * says (with its backoff; a rate limit waits for its `Retry-After`).
     *
     * An import that is interrupted (the coroutine cancelled, the process ended, the retries
     * spent) stays on the server: calling again with the same [importId] and the same dump, or
     * a new export of the same data, resumes it: the server reads the dump again from its
     * beginning, checks what it committed and writes only the rest. [abortImport] gives it up
     * instead. If the answer to the last chunk is lost and the server no longer knows the
     * import, the caller's stores are exported and compared with the dump's checksum: a
     * match is the import's success.
     *
     * @param importId names the import, 1 to 64 printable ASCII characters.
     * @param onProgress hears how far the import got after each chunk the server answered,
     *   the last one included (then `committedBytes` is the dump's size).
     * @throws com.connectrpc.ConnectException `INVALID_ARGUMENT` for a bad dump (truncated,
     *   a wrong checksum, an unknown version, a record over the limits) and
     *   `FAILED_PRECONDITION` for a store that is not empty: the server then removed
     *   everything the import wrote. `RESOURCE_EXHAUSTED` for a quota, with the same effect.
     *   Any other failure, once retries are spent, leaves the import to be resumed.
     */
    suspend fun importData(
        file: File,
        importId: String,
        chunkBytes: Int = DEFAULT_IMPORT_CHUNK_BYTES,
        onProgress: ((ImportProgress) -> Unit)? = null,
    ): DumpSummary = withContext(Dispatchers.IO) { FileSource(file).use { importDump(service, retry, it, importId, chunkBytes, onProgress) } }

    /**
     * Imports the dump read from [source] into the caller's stores, as the [File] variant
     * does, holding in memory only the bytes the server has not committed yet (at most a
     * chunk, or the record the server asks for). [source] is read to its end, not closed.
     *
     * A stream cannot be read again: should the server ask for bytes before those it
     * committed (it does not, unless the import is changed by someone else meanwhile), this
     * fails with `FAILED_PRECONDITION`; call again with the dump from its beginning under the
     * same [importId] to resume.
     */
    suspend fun importData(
        source: InputStream,
        importId: String,
        chunkBytes: Int = DEFAULT_IMPORT_CHUNK_BYTES,
        onProgress: ((ImportProgress) -> Unit)? = null,
    ): DumpSummary = StreamSource(source).use { importDump(service, retry, it, importId, chunkBytes, onProgress) }

    /**
     * Gives the import [importId] up: everything it wrote is deleted and the server forgets
     * it. Aborting an import the server does not know does nothing. Retried as [retry] says.
     */
    suspend fun abortImport(importId: String) = abortDumpImport(service, retry, importId)

    /**
     * Deletes the store [storeId] of the caller: every key, its global version, its change
     * feed and leases (this sends the confirm phrase `delete store <storeId>` the server
     * asks for). With [dryRun] it deletes nothing and reports what it would delete: `keys`
     * (the global version counted as one when set) and `bytes`; `deleted` tells which. A dry
     * run is retried as [retry] says, a delete is made once.
     *
     * @throws com.connectrpc.ConnectException when the call fails.
     */
    suspend fun deleteStore(storeId: String, dryRun: Boolean = false): Vss.DeleteStoreResponse =
        deleteOneStore(service, retry, storeId, dryRun)

    /**
     * Deletes every store of the caller, as [deleteStore] does one (this sends the confirm
     * phrase `delete all data`). With [dryRun] it deletes nothing and reports what it would
     * delete: `stores`, `keys` and `bytes`.
     *
     * @throws com.connectrpc.ConnectException when the call fails.
     */
    suspend fun deleteAllData(dryRun: Boolean = false): Vss.DeleteAllDataResponse =
        deleteEveryStore(service, retry, dryRun)

    override fun close() {
        if (!owned) return
        http.dispatcher.executorService.shutdown()
        http.connectionPool.evictAll()
        http.cache?.close()
    }

    companion object {
        /**
         * How long [watchChanges] waits for a message, keep-alives included, before it takes
         * the stream for dead and reconnects: 60 s, three of the server's default keep-alive
         * intervals.
         */
        @JvmField
        val DEFAULT_WATCH_IDLE_TIMEOUT: Duration = Duration.ofSeconds(60)

        /**
         * How long [exportData] waits for the next chunk before it takes the stream for dead:
         * 60 s (the server sends a chunk at least every megabyte it reads).
         */
        @JvmField
        val DEFAULT_EXPORT_IDLE_TIMEOUT: Duration = Duration.ofSeconds(60)

        /** The size of [importData]'s chunks when none is given: 1 MiB, as the server exports. */
        const val DEFAULT_IMPORT_CHUNK_BYTES: Int = 1 shl 20
    }
}

/**
 * Lists every page of keys of [service] from [request] on and returns them as one response
 * (see [VssClient.listAll]).
 */
internal suspend fun listAllPages(service: VssServiceClientInterface, request: Vss.ListKeyVersionsRequest): Vss.ListKeyVersionsResponse {
    val all = Vss.ListKeyVersionsResponse.newBuilder()
    val seen = HashSet<String>()
    var page = request
    var first = true
    while (true) {
        val response = service.listKeyVersions(page).getOrThrow()
        if (first && response.hasGlobalVersion()) all.globalVersion = response.globalVersion
        first = false
        all.addAllKeyVersions(response.keyVersionsList)
        val next = response.nextPageToken
        if (next.isEmpty()) return all.build()
        if (!seen.add(next)) throw ConnectException(Code.INTERNAL_ERROR, "the server answered the page token \"$next\" twice")
        page = page.toBuilder().setPageToken(next).build()
    }
}

/** Returns [id] if it is a valid device id: 1 to 120 printable ASCII characters. */
private fun checkDeviceId(id: String) {
    require(id.length in 1..120 && id.all { it in ' '..'~' }) { "deviceId must be 1 to 120 printable ASCII characters" }
}

/** DeviceInterceptor names the device in the `vss-device-id` header of every write. */
private class DeviceInterceptor(private val deviceId: String) : Interceptor {
    override fun unaryFunction() = UnaryFunction(
        requestFunction = { request ->
            val method = request.methodSpec.path.substringAfterLast('/')
            if ((method == "PutObjects" || method == "DeleteObject") && request.headers.keys.none { it.equals(DEVICE_ID, ignoreCase = true) }) {
                request.clone(headers = request.headers + (DEVICE_ID to listOf(deviceId)))
            } else {
                request
            }
        },
    )

    override fun streamFunction() = StreamFunction()

    private companion object {
        const val DEVICE_ID = "vss-device-id"
    }
}

/**
 * AuthInterceptor adds the credentials' `Authorization` header to each request. It sees the
 * outcome of the request too (connect-kotlin makes one interceptor per call): when the server
 * refuses the header with `UNAUTHENTICATED`, [LnurlAuth] credentials drop the token it
 * carried, so that the next attempt, or the next call, logs in again.
 */
private class AuthInterceptor(private val credentials: Credentials) : Interceptor {
    /** The header this call sent. */
    @Volatile
    private var sent: String? = null

    private fun authorize(headers: Headers): Headers? {
        val value = credentials.authorization() ?: return null
        sent = value
        return headers + (AUTHORIZATION to listOf(value))
    }

    private fun answered(cause: ConnectException?) {
        val value = sent ?: return
        if (cause?.code == Code.UNAUTHENTICATED && credentials is LnurlAuth) credentials.refused(value)
    }

    override fun unaryFunction() = UnaryFunction(
        requestFunction = { request -> authorize(request.headers)?.let { request.clone(headers = it) } ?: request },
        responseFunction = { response -> response.also { answered(it.cause) } },
    )

    override fun streamFunction() = StreamFunction(
        requestFunction = { request -> authorize(request.headers)?.let { request.clone(headers = it) } ?: request },
        streamResultFunction = { result -> result.also { if (it is StreamResult.Complete) answered(it.cause) } },
    )

    private companion object {
        const val AUTHORIZATION = "authorization"
    }
}

private val MIN_LEASE_TTL: Duration = Duration.ofSeconds(1)
private val MAX_LEASE_TTL: Duration = Duration.ofHours(1)
