package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.connectrpc.protocols.NetworkProtocol
import com.google.protobuf.ByteString
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import vss.v1.Vss
import vss.v1.deleteObjectRequest
import vss.v1.getChangeCursorRequest
import vss.v1.keyValue
import vss.v1.listChangesRequest
import vss.v1.putObjectRequest
import java.nio.file.Files
import java.nio.file.Path
import java.time.Clock
import java.time.Duration
import java.util.Collections
import java.util.UUID
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/**
 * ChangeFeedTest follows the change feed of a real vss-server through the client's
 * watchChanges and listChanges: live changes with their device ids over every protocol,
 * resuming without loss or repetition after connections are cut, a slow consumer is cut
 * off and the server restarts, and the typed end of a feed that cannot continue.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ChangeFeedTest {
    /** Protocol is one way of reaching the service, with binary protobuf or JSON. */
    enum class Protocol(val protocol: NetworkProtocol, val json: Boolean) {
        CONNECT_PROTO(NetworkProtocol.CONNECT, false),
        CONNECT_JSON(NetworkProtocol.CONNECT, true),
        GRPC_WEB_PROTO(NetworkProtocol.GRPC_WEB, false),
        GRPC_WEB_JSON(NetworkProtocol.GRPC_WEB, true),
        GRPC_PROTO(NetworkProtocol.GRPC, false),
        GRPC_JSON(NetworkProtocol.GRPC, true),
    }

    private lateinit var server: VssServer
    private val clients = Collections.synchronizedList(mutableListOf<VssClient>())

    /** Reconnects quickly, so that the tests do not wait for long backoffs. */
    private val quick = RetryPolicy(maxAttempts = 0, initialBackoff = Duration.ofMillis(50), maxBackoff = Duration.ofMillis(500))

    @BeforeAll
    fun startServer() {
        server = VssServer.start(listOf("--auth", "signature"))
    }

    @AfterAll
    fun stopServer() {
        clients.forEach { it.close() }
        server.close()
    }

    private fun client(
        url: String,
        key: SignatureKey,
        protocol: Protocol = Protocol.CONNECT_PROTO,
        deviceId: String? = null,
    ): VssClient = VssClients.create(url, Credentials.signature(key), protocol = protocol.protocol, json = protocol.json, deviceId = deviceId)
        .also { clients += it }

    private fun newStore() = "feed-" + UUID.randomUUID()

    private fun kv(key: String, version: Long, value: String = "") = keyValue {
        this.key = key
        this.version = version
        this.value = ByteString.copyFromUtf8(value)
    }

    private suspend fun VssClient.put(store: String, vararg items: Vss.KeyValue, globalVersion: Long? = null) {
        putObjects(
            putObjectRequest {
                storeId = store
                globalVersion?.let { this.globalVersion = it }
                transactionItems += items.toList()
            },
        ).getOrThrow()
    }

    private suspend fun VssClient.cursor(store: String): String =
        getChangeCursor(getChangeCursorRequest { storeId = store }).getOrThrow().cursor

    /** Watch collects a watchChanges flow in the background into [batches]. */
    private class Watch(val job: Job, val batches: Channel<ChangeBatch>, val failures: MutableList<Throwable>) {
        /** Receives batches until they hold [n] changes in all (more is a failure), within [timeoutMs]. */
        suspend fun changes(n: Int, timeoutMs: Long = 20_000): List<Vss.Change> {
            val got = mutableListOf<Vss.Change>()
            withTimeout(timeoutMs) {
                while (got.size < n) got += batches.receive().changes
            }
            assertEquals(n, got.size, "changes received: ${got.map { it.key }}")
            return got
        }

        /** Receives the next batch, within [timeoutMs]. */
        suspend fun next(timeoutMs: Long = 20_000): ChangeBatch = withTimeout(timeoutMs) { batches.receive() }
    }

    private fun CoroutineScope.watch(
        vss: VssClient,
        store: String,
        cursor: String,
        includeValues: Boolean = false,
        onBatch: suspend (ChangeBatch) -> Unit = {},
    ): Watch {
        val batches = Channel<ChangeBatch>(Channel.UNLIMITED)
        val failures = Collections.synchronizedList(mutableListOf<Throwable>())
        val job = launch {
            vss.watchChanges(store, cursor, includeValues, reconnect = quick, listener = { e, _, _ -> failures += e })
                .collect { batch ->
                    batches.send(batch)
                    onBatch(batch)
                }
        }
        return Watch(job, batches, failures)
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Protocol::class)
    fun `watch delivers another device's writes live, with its device id`(protocol: Protocol) = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val phone = client(server.baseUrl, key, protocol, deviceId = "phone")
        val laptop = client(server.baseUrl, key, protocol)
        val store = newStore()
        val start = laptop.cursor(store)

        val w = watch(laptop, store, start, includeValues = true)
        val open = w.next()
        assertTrue(open.changes.isEmpty(), "the first batch says the stream is open: $open")
        assertEquals(start, open.cursor)

        phone.put(store, kv("k", 0, "hello"), globalVersion = 0)
        val first = w.changes(2)
        assertEquals(setOf("k", "global_version"), first.map { it.key }.toSet())
        assertTrue(first.all { it.deviceId == "phone" }, "the changes carry the writer's device id: $first")
        val k = first.single { it.key == "k" }
        assertEquals(1, k.version)
        assertEquals("hello", k.value.toStringUtf8())
        assertTrue(!k.deleted)

        phone.deleteObject(deleteObjectRequest { storeId = store; keyValue = kv("k", 1) }).getOrThrow()
        val deleted = w.changes(1).single()
        assertEquals("k", deleted.key)
        assertTrue(deleted.deleted)
        assertEquals("phone", deleted.deviceId)

        // A client without a device id writes anonymously; its own writes come back too.
        laptop.put(store, kv("mine", 0, "x"))
        val mine = w.changes(1).single()
        assertEquals("mine", mine.key)
        assertEquals("", mine.deviceId)
        w.job.cancel()
        assertTrue(w.failures.isEmpty(), "no reconnection was needed: ${w.failures}")
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = Protocol::class, names = ["CONNECT_PROTO", "GRPC_WEB_PROTO", "GRPC_PROTO"])
    fun `watch resumes after its connection is cut, without losing or repeating a change`(protocol: Protocol) = runBlocking<Unit> {
        TcpProxy(server.address).use { proxy ->
            val key = SignatureKey.generate()
            val writer = client(server.baseUrl, key, protocol, deviceId = "writer")
            val reader = client(proxy.baseUrl, key, protocol)
            val store = newStore()
            val start = writer.cursor(store)

            // A backlog of 250 changes in one write: the stream sends it in pages of 100,
            // and the connection is cut right after the first page arrived.
            writer.put(store, *Array(250) { kv("backlog/%03d".format(it), 0, "v") })
            var cutOnce = false
            val w = watch(reader, store, start) { batch ->
                if (batch.changes.isNotEmpty() && !cutOnce) {
                    cutOnce = true
                    proxy.cut()
                }
            }
            val backlog = w.changes(250)
            assertEquals(List(250) { "backlog/%03d".format(it) }.sorted(), backlog.map { it.key }.sorted())
            assertEquals(250, backlog.map { it.cursor }.toSet().size, "every change once")

            // Live changes, with cuts between them and a spell in which no connection works.
            val live = mutableListOf<Vss.Change>()
            for (i in 0 until 5) writer.put(store, kv("live/$i", 0))
            live += w.changes(5)
            proxy.cut()
            for (i in 5 until 10) writer.put(store, kv("live/$i", 0))
            live += w.changes(5)
            proxy.down = true
            proxy.cut()
            for (i in 10 until 15) writer.put(store, kv("live/$i", 0))
            delay(700)
            proxy.down = false
            live += w.changes(15 - 10)
            assertEquals(List(15) { "live/$it" }, live.map { it.key }, "in commit order, each once")

            // Nothing more arrives: no change is delivered twice.
            writer.put(store, kv("last", 0))
            assertEquals(listOf("last"), w.changes(1).map { it.key })
            w.job.cancel()
            assertTrue(w.failures.size >= 3, "the flow reconnected after each cut: ${w.failures}")
        }
    }

    @Test
    fun `a consumer too slow for the server is cut off and resumes where it was`() = runBlocking<Unit> {
        VssServer.start(listOf("--auth", "signature", "--watch-send-timeout", "1s")).use { slowServer ->
            val key = SignatureKey.generate()
            val writer = client(slowServer.baseUrl, key)
            val reader = client(slowServer.baseUrl, key)
            val store = newStore()
            val start = writer.cursor(store)
            val mib = ByteString.copyFrom(ByteArray(1 shl 20) { it.toByte() })
            for (i in 0 until 40) {
                writer.putObjects(putObjectRequest { storeId = store; transactionItems += keyValue { this.key = "big/%02d".format(i); version = 0; value = mib } })
                    .getOrThrow()
            }
            // The reader takes values (4 MiB a message) and stalls on its first batch for
            // longer than the server waits to write one message.
            var stalled = false
            val w = watch(reader, store, start, includeValues = true) { batch ->
                if (batch.changes.isNotEmpty() && !stalled) {
                    stalled = true
                    delay(5_000)
                }
            }
            val got = w.changes(40, timeoutMs = 60_000)
            assertEquals(List(40) { "big/%02d".format(it) }, got.map { it.key })
            assertTrue(got.all { it.value == mib }, "every value arrives whole")
            w.job.cancel()
            // Nothing but the server's send timeout ends a stream here: the connection it
            // cut is broken, so the reader sees a transport failure rather than the
            // SLOW_CONSUMER error, and reconnects.
            assertTrue(w.failures.isNotEmpty(), "the flow reconnected after the server cut the stream; server log:\n${slowServer.log()}")
        }
    }

    @Test
    fun `watch resumes across a server restart, from the server's shutdown error`() = runBlocking<Unit> {
        val data = Files.createTempDirectory("vss-feed-restart")
        try {
            val embedded = listOf("--database-url", "", "--data-dir", data.toString())
            val key = SignatureKey.generate()
            val store = newStore()
            var first: VssServer? = VssServer.start(listOf("--auth", "signature"), database = embedded)
            val address = first!!.address
            try {
                val writer = client(first.baseUrl, key, deviceId = "writer")
                val reader = client(first.baseUrl, key)
                val start = writer.cursor(store)
                val w = watch(reader, store, start)
                w.next()
                for (k in listOf("a", "b", "c")) writer.put(store, kv(k, 0))
                assertEquals(listOf("a", "b", "c"), w.changes(3).map { it.key })

                first.close()
                first = null
                VssServer.start(listOf("--auth", "signature"), listen = address, database = embedded).use { second ->
                    for (k in listOf("d", "e")) writer.put(store, kv(k, 0))
                    val after = w.changes(2)
                    assertEquals(listOf("d", "e"), after.map { it.key })
                    writer.put(store, kv("f", 0))
                    assertEquals(listOf("f"), w.changes(1).map { it.key })
                    w.job.cancel()
                    val reasons = w.failures.mapNotNull { (it as? ConnectException)?.feedError()?.reason }
                    assertTrue(Vss.FeedErrorReason.FEED_ERROR_REASON_SHUTTING_DOWN in reasons, "the stream ended with SHUTTING_DOWN: ${w.failures}; log:\n${second.log()}")
                }
            } finally {
                first?.close()
            }
        } finally {
            data.toFile().deleteRecursively()
        }
    }

    @Test
    fun `a cursor the server no longer keeps ends watch and list with CursorExpiredException`() = runBlocking<Unit> {
        val data = Files.createTempDirectory("vss-feed-expired")
        try {
            val embedded = listOf("--database-url", "", "--data-dir", data.toString())
            val key = SignatureKey.generate()
            val store = newStore()
            VssServer.start(listOf("--auth", "signature"), database = embedded).use { s ->
                val vss = client(s.baseUrl, key)
                vss.cursor(store)
                vss.put(store, kv("a", 0), kv("b", 0))
                assertEquals(listOf("a", "b"), vss.listChanges(store, "").toList().flatMap { b -> b.changes.map { it.key } }.sorted())
            }
            delay(2_100)
            // Restarted with a retention of one second, the server drops the changes above.
            VssServer.start(listOf("--auth", "signature", "--feed-retention", "1s"), database = embedded).use { s ->
                val vss = client(s.baseUrl, key)
                awaitExpired(vss, store)
                val watched = assertFailsWith<CursorExpiredException> {
                    withTimeout(20_000) { vss.watchChanges(store, "", reconnect = quick).collect() }
                }
                assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_CURSOR_EXPIRED, watched.reason)
                assertEquals(store, watched.storeId)
                assertEquals("", watched.cursor)
                assertEquals(Code.FAILED_PRECONDITION, watched.cause.code)
                val listed = assertFailsWith<CursorExpiredException> { vss.listChanges(store, "").collect() }
                assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_CURSOR_EXPIRED, listed.reason)

                // The way back: a fresh cursor, then the feed follows from it.
                val fresh = vss.cursor(store)
                val pages = vss.listChanges(store, fresh).toList()
                assertEquals(listOf(ChangeBatch(emptyList(), fresh)), pages)
            }
        } finally {
            data.toFile().deleteRecursively()
        }
    }

    /** Waits until the server has pruned the store's feed (it prunes right after it starts). */
    private suspend fun awaitExpired(vss: VssClient, store: String) {
        withTimeout(20_000) {
            while (true) {
                val r = vss.listChanges(listChangesRequest { storeId = store })
                if (r is ResponseMessage.Failure && r.cause.code == Code.FAILED_PRECONDITION) return@withTimeout
                delay(100)
            }
        }
    }

    @Test
    fun `a cursor beyond the feed is CURSOR_UNKNOWN, and failures no retry fixes end the flow`() = runBlocking<Unit> {
        val vss = client(server.baseUrl, SignatureKey.generate())
        val store = newStore()
        vss.put(store, kv("a", 0))
        val unknown = assertFailsWith<CursorExpiredException> {
            withTimeout(20_000) { vss.watchChanges(store, "1000000", reconnect = quick).collect() }
        }
        assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_CURSOR_UNKNOWN, unknown.reason)
        assertFailsWith<CursorExpiredException> { vss.listChanges(store, "1000000").collect() }

        val anonymous = VssClients.create(server.baseUrl, Credentials.NONE).also { clients += it }
        val refused = assertFailsWith<ConnectException> {
            withTimeout(20_000) { anonymous.watchChanges(store, "", reconnect = quick).collect() }
        }
        assertEquals(Code.UNAUTHENTICATED, refused.code)
        val malformed = assertFailsWith<ConnectException> {
            withTimeout(20_000) { vss.watchChanges(store, "not-a-cursor", reconnect = quick).collect() }
        }
        assertEquals(Code.INVALID_ARGUMENT, malformed.code)
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Protocol::class)
    fun `a stream the server refuses ends the flow at once, without reconnecting`(protocol: Protocol) = runBlocking<Unit> {
        // A signature two days old: the server refuses the credentials before the stream
        // starts. Over gRPC-Web that is a "trailers-only" response, its status in the
        // response headers, which connect-kotlin 0.7.4 reports as a normal end of stream.
        val stale = Credentials.signature(SignatureKey.generate(), Clock.offset(Clock.systemUTC(), Duration.ofHours(-48)))
        val vss = VssClients.create(server.baseUrl, stale, protocol = protocol.protocol, json = protocol.json).also { clients += it }
        val retries = Collections.synchronizedList(mutableListOf<Throwable>())
        val refused = assertFailsWith<ConnectException> {
            withTimeout(10_000) {
                vss.watchChanges(newStore(), "", reconnect = quick, listener = { e, _, _ -> retries += e }).collect()
            }
        }
        assertEquals(Code.UNAUTHENTICATED, refused.code, "refused: $refused")
        assertTrue(!refused.message.isNullOrEmpty(), "the server's message is kept")
        assertEquals(Vss.ErrorCode.AUTH_EXCEPTION, refused.vssError()?.errorCode, "the server's error details are kept")
        assertEquals(emptyList(), retries, "reconnections")
    }

    @Test
    fun `listChanges pages through the feed up to its end`() = runBlocking<Unit> {
        val vss = client(server.baseUrl, SignatureKey.generate(), deviceId = "pager")
        val store = newStore()
        val start = vss.cursor(store)
        for (i in 0 until 7) vss.put(store, kv("k$i", 0, "value $i"))
        val pages = vss.listChanges(store, start, includeValues = true, pageSize = 3).toList()
        assertEquals(listOf(3, 3, 1), pages.map { it.changes.size })
        val changes = pages.flatMap { it.changes }
        assertEquals(List(7) { "k$it" }, changes.map { it.key })
        assertEquals(List(7) { "value $it" }, changes.map { it.value.toStringUtf8() })
        assertTrue(changes.all { it.deviceId == "pager" })
        assertEquals(changes.last().cursor, pages.last().cursor)
        // From the end, one empty page that keeps the cursor.
        assertEquals(listOf(ChangeBatch(emptyList(), pages.last().cursor)), vss.listChanges(store, pages.last().cursor).toList())
        assertNotNull(pages.first().cursor)
    }
}
