package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import okhttp3.OkHttpClient
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.time.Duration
import java.util.Collections
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue

/**
 * RetryTest checks the client's retries (calls free of side effects or idempotent are
 * retried through a connection that fails for a while, writes are not), the timeout of each
 * attempt, and listAll, against a real vss-server behind a TCP proxy the test breaks.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RetryTest {
    private lateinit var server: VssServer
    private val clients = Collections.synchronizedList(mutableListOf<VssClient>())
    private val http = Collections.synchronizedList(mutableListOf<OkHttpClient>())

    @BeforeAll
    fun startServer() {
        server = VssServer.start(listOf("--auth", "signature"))
    }

    @AfterAll
    fun stopServer() {
        clients.forEach { it.close() }
        http.forEach { it.dispatcher.executorService.shutdown(); it.connectionPool.evictAll() }
        server.close()
    }

    /** Returns a client of [url] and the count of requests it sent, by method. */
    private fun client(url: String, key: SignatureKey, retry: RetryPolicy, timeout: Duration = VssClients.DEFAULT_TIMEOUT): Pair<VssClient, Map<String, AtomicInteger>> {
        val sent = ConcurrentHashMap<String, AtomicInteger>()
        val counting = OkHttpClient.Builder().addInterceptor { chain ->
            sent.computeIfAbsent(chain.request().url.encodedPath.substringAfterLast('/')) { AtomicInteger() }.incrementAndGet()
            chain.proceed(chain.request())
        }.build().also { http += it }
        val vss = VssClients.create(url, Credentials.signature(key), httpClient = counting, retry = retry, timeout = timeout)
        return vss.also { clients += it } to sent
    }

    private fun newStore() = "retry-" + UUID.randomUUID()

    private val patient = RetryPolicy(maxAttempts = 20, initialBackoff = Duration.ofMillis(50), maxBackoff = Duration.ofMillis(200))

    @Test
    fun `the default timeout is the Go client's`() {
        assertEquals(Duration.ofSeconds(30), VssClients.DEFAULT_TIMEOUT)
        assertEquals(5, RetryPolicy.DEFAULT.maxAttempts)
    }

    @Test
    fun `reads are retried through a failing connection, writes are not`() = runBlocking<Unit> {
        TcpProxy(server.address).use { proxy ->
            val key = SignatureKey.generate()
            val direct = VssClients.create(server.baseUrl, Credentials.signature(key)).also { clients += it }
            val store = newStore()
            direct.putObjects(putObjectRequest { storeId = store; transactionItems += keyValue { this.key = "k"; version = 0; value = ByteString.copyFromUtf8("v") } }).getOrThrow()

            val (vss, sent) = client(proxy.baseUrl, key, patient)
            proxy.down = true
            launch {
                delay(600)
                proxy.down = false
            }
            // Refused for 600 ms, then served: the read gets through after some attempts.
            assertEquals("v", vss.getObject(getObjectRequest { storeId = store; this.key = "k" }).getOrThrow().value.value.toStringUtf8())
            assertTrue(sent.getValue("GetObject").get() > 1, "GetObject was retried: $sent")

            // The blocking twin retries too.
            proxy.down = true
            proxy.cut()
            val blocking = Thread {
                Thread.sleep(600)
                proxy.down = false
            }.apply { start() }
            val got = vss.getObjectBlocking(getObjectRequest { storeId = store; this.key = "k" }).execute().getOrThrow()
            blocking.join()
            assertEquals("v", got.value.value.toStringUtf8())

            // A write is made once: it may have committed before its answer was lost.
            proxy.down = true
            proxy.cut()
            val put = vss.putObjects(putObjectRequest { storeId = store; transactionItems += keyValue { this.key = "w"; version = 0 } })
            assertIs<ResponseMessage.Failure<*>>(put)
            assertEquals(1, sent.getValue("PutObjects").get(), "PutObjects was sent once: $sent")
            proxy.down = false

            // Without retries a read fails at its first failure.
            val (once, onceSent) = client(proxy.baseUrl, key, RetryPolicy.NONE)
            proxy.down = true
            assertIs<ResponseMessage.Failure<*>>(once.getObject(getObjectRequest { storeId = store; this.key = "k" }))
            assertEquals(1, onceSent.getValue("GetObject").get())
            proxy.down = false
        }
    }

    @Test
    fun `each attempt has its own timeout`() = runBlocking<Unit> {
        TcpProxy(server.address).use { proxy ->
            val (vss, sent) = client(proxy.baseUrl, SignatureKey.generate(), RetryPolicy(maxAttempts = 3, initialBackoff = Duration.ofMillis(10), maxBackoff = Duration.ofMillis(10)), timeout = Duration.ofMillis(300))
            proxy.blackhole = true
            val started = System.nanoTime()
            val result = vss.getObject(getObjectRequest { storeId = newStore(); key = "k" })
            val took = Duration.ofNanos(System.nanoTime() - started)
            assertIs<ResponseMessage.Failure<*>>(result)
            assertEquals(Code.DEADLINE_EXCEEDED, result.cause.code)
            assertEquals(3, sent.getValue("GetObject").get(), "three attempts, each timed out: $sent")
            assertTrue(took >= Duration.ofMillis(900), "three attempts of 300 ms: $took")
        }
    }

    @Test
    fun `listAll follows every page`() = runBlocking<Unit> {
        val (vss, sent) = client(server.baseUrl, SignatureKey.generate(), RetryPolicy.DEFAULT)
        val store = newStore()
        val keys = List(250) { "k/%03d".format(it) }
        vss.putObjects(putObjectRequest { storeId = store; globalVersion = 0; transactionItems += keys.map { k -> keyValue { key = k; version = 0 } } }).getOrThrow()
        vss.putObjects(putObjectRequest { storeId = store; transactionItems += keyValue { key = "other"; version = 0 } }).getOrThrow()

        val all = vss.listAll(listKeyVersionsRequest { storeId = store; keyPrefix = "k/"; pageSize = 40 })
        assertEquals(keys.sorted(), all.keyVersionsList.map { it.key }.sorted())
        assertEquals(250, all.keyVersionsList.map { it.key }.toSet().size)
        assertTrue(all.hasGlobalVersion())
        assertEquals(1, all.globalVersion)
        assertEquals("", all.nextPageToken)
        assertTrue(sent.getValue("ListKeyVersions").get() >= 7, "250 keys in pages of 40: $sent")
        assertEquals(listOf("other") + keys.reversed(), vss.listAll(listKeyVersionsRequest { storeId = store }).keyVersionsList.map { it.key })
    }
}
