package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.connectrpc.protocols.NetworkProtocol
import com.google.protobuf.ByteString
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.deleteObjectRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.time.Clock
import java.time.Duration
import java.time.Instant
import java.time.ZoneOffset
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * VssClientTest drives a real vss-server (signature and JWT authentication, in-memory
 * store) through the generated client, over every protocol and codec the client offers.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VssClientTest {
    /** Transport is one way of reaching the service. */
    enum class Transport(val protocol: NetworkProtocol, val json: Boolean) {
        CONNECT_PROTO(NetworkProtocol.CONNECT, false),
        CONNECT_JSON(NetworkProtocol.CONNECT, true),
        GRPC_WEB_PROTO(NetworkProtocol.GRPC_WEB, false),
        GRPC_WEB_JSON(NetworkProtocol.GRPC_WEB, true),
        GRPC_PROTO(NetworkProtocol.GRPC, false),
        GRPC_JSON(NetworkProtocol.GRPC, true),
    }

    private val issuer = TestJwtIssuer()
    private lateinit var server: VssServer

    @BeforeAll
    fun startServer() {
        server = VssServer.start(
            listOf("--auth", "signature,jwt", "--jwt-public-key-file", "{jwt.pem}"),
            mapOf("jwt.pem" to issuer.publicKeyPem),
        )
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    private fun client(transport: Transport, credentials: Credentials = Credentials.signature(SignatureKey.generate())): VssServiceClientInterface =
        VssClients.create(server.baseUrl, credentials, protocol = transport.protocol, json = transport.json)

    private fun newStore() = "kotlin-" + UUID.randomUUID()

    private fun bytes(s: String): ByteString = ByteString.copyFromUtf8(s)

    private fun kv(key: String, version: Long, value: String = "") = keyValue {
        this.key = key
        this.version = version
        this.value = bytes(value)
    }

    private suspend fun VssServiceClientInterface.get(store: String, key: String): Vss.KeyValue =
        getObject(getObjectRequest { storeId = store; this.key = key }).getOrThrow().value

    private suspend fun VssServiceClientInterface.put(store: String, vararg items: Vss.KeyValue, globalVersion: Long? = null) {
        putObjects(
            putObjectRequest {
                storeId = store
                globalVersion?.let { this.globalVersion = it }
                transactionItems += items.toList()
            },
        ).getOrThrow()
    }

    /** Asserts that the call failed with [code] and, when given, the VSS error [vssCode]. */
    private suspend fun expectError(code: Code, vssCode: Vss.ErrorCode?, call: suspend () -> ResponseMessage<*>): ConnectException {
        when (val result = call()) {
            is ResponseMessage.Success -> fail("expected $code, got success: ${result.message}")
            is ResponseMessage.Failure -> {
                val e = result.cause
                assertEquals(code, e.code, "code of $e (server log:\n${server.log()})")
                if (vssCode != null) {
                    val detail = assertNotNull(e.vssError(), "the error carries the VSS ErrorResponse: $e")
                    assertEquals(vssCode, detail.errorCode)
                    assertEquals(e.message, detail.message)
                }
                return e
            }
        }
    }

    @Test
    fun `close stops the client's own threads and connections, and leaves a caller's OkHttp client running`() = runBlocking<Unit> {
        val own = VssClients.create(server.baseUrl, Credentials.signature(SignatureKey.generate()))
        own.putObjects(putObjectRequest { storeId = newStore(); transactionItems += kv("k", 0, "v") }).getOrThrow()
        assertTrue(own.http.connectionPool.connectionCount() > 0, "a call leaves its connection in the pool")
        own.close()
        assertTrue(own.http.dispatcher.executorService.isShutdown, "close shuts the client's own dispatcher down")
        assertEquals(0, own.http.connectionPool.connectionCount(), "close closes the client's own connections")

        val callers = okhttp3.OkHttpClient()
        try {
            val borrowed = VssClients.create(server.baseUrl, Credentials.signature(SignatureKey.generate()), httpClient = callers)
            borrowed.putObjects(putObjectRequest { storeId = newStore(); transactionItems += kv("k", 0, "v") }).getOrThrow()
            borrowed.close()
            assertFalse(callers.dispatcher.executorService.isShutdown, "close leaves the caller's dispatcher running")
            assertFalse(borrowed.http.dispatcher.executorService.isShutdown, "the client shares the caller's dispatcher")
        } finally {
            callers.dispatcher.executorService.shutdown()
            callers.connectionPool.evictAll()
        }
    }

    @Test
    fun `the README example works`() = runBlocking<Unit> {
        assertEquals("greeting v1: hello", readmeExample(server.baseUrl))
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `put, get and update keys`(transport: Transport) = runBlocking<Unit> {
        val vss = client(transport)
        val store = newStore()

        vss.put(store, kv("greeting", 0, "hello"), globalVersion = 0)
        val first = vss.get(store, "greeting")
        assertEquals("greeting", first.key)
        assertEquals(1, first.version)
        assertEquals("hello", first.value.toStringUtf8())

        vss.put(store, kv("greeting", 1, "hi!"), globalVersion = 1)
        assertEquals(2, vss.get(store, "greeting").version)
        assertEquals("hi!", vss.get(store, "greeting").value.toStringUtf8())

        // The reserved key reads the store's global version.
        val global = vss.get(store, "global_version")
        assertEquals(2, global.version)
        assertTrue(global.value.isEmpty)

        // Version -1 writes unconditionally and sets version 1.
        vss.put(store, kv("greeting", -1, "forced"))
        assertEquals(1, vss.get(store, "greeting").version)

        // A value of several MiB, as LDK's channel manager writes, round-trips intact.
        val big = ByteString.copyFrom(ByteArray(3 shl 20) { (it * 31).toByte() })
        vss.putObjects(putObjectRequest { storeId = store; transactionItems += keyValue { key = "big"; version = 0; value = big } }).getOrThrow()
        assertEquals(big, vss.get(store, "big").value)

        // The blocking variant of the generated client reaches the same data.
        val blocking = vss.getObjectBlocking(getObjectRequest { storeId = store; key = "greeting" }).execute().getOrThrow()
        assertEquals("forced", blocking.value.value.toStringUtf8())
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `list pages through keys, newest first`(transport: Transport) = runBlocking<Unit> {
        val vss = client(transport)
        val store = newStore()
        val keys = (0 until 7).map { "p/$it" }
        for (key in keys) vss.put(store, kv(key, 0, "value of $key"))
        vss.put(store, kv("other", 0, "x"), globalVersion = 0)
        vss.put(store, kv("p/3", 1, "updated")) // an update keeps the key's place

        val pages = mutableListOf<Vss.ListKeyVersionsResponse>()
        var token: String? = null
        do {
            val page = vss.listKeyVersions(
                listKeyVersionsRequest {
                    storeId = store
                    keyPrefix = "p/"
                    pageSize = 3
                    token?.let { pageToken = it }
                },
            ).getOrThrow()
            pages += page
            token = page.nextPageToken.ifEmpty { null }
            assertTrue(pages.size <= 10, "listing does not end")
        } while (token != null)

        val listed = pages.flatMap { it.keyVersionsList }
        assertEquals(keys.reversed(), listed.map { it.key })
        assertEquals(keys.reversed().map { if (it == "p/3") 2L else 1L }, listed.map { it.version })
        assertTrue(listed.all { it.value.isEmpty }, "listings carry no values")
        assertTrue(pages.size >= 3, "7 keys in pages of 3 take at least 3 pages, got ${pages.size}")
        assertTrue(pages.all { it.keyVersionsCount <= 3 })
        assertTrue(pages[0].hasGlobalVersion(), "the first page carries the global version")
        assertEquals(1, pages[0].globalVersion)
        assertTrue(pages.drop(1).none { it.hasGlobalVersion() }, "later pages do not")

        // Without a prefix the listing has every key; a page size of 0 only the global version.
        val all = vss.listKeyVersions(listKeyVersionsRequest { storeId = store }).getOrThrow()
        assertEquals(listOf("other") + keys.reversed(), all.keyVersionsList.map { it.key })
        val none = vss.listKeyVersions(listKeyVersionsRequest { storeId = store; pageSize = 0 }).getOrThrow()
        assertEquals(0, none.keyVersionsCount)
        assertEquals(1, none.globalVersion)

        // A token the server did not issue is an invalid request.
        expectError(Code.INVALID_ARGUMENT, Vss.ErrorCode.INVALID_REQUEST_EXCEPTION) {
            vss.listKeyVersions(listKeyVersionsRequest { storeId = store; pageToken = "not-a-token" })
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `delete removes keys and is idempotent`(transport: Transport) = runBlocking<Unit> {
        val vss = client(transport)
        val store = newStore()
        vss.put(store, kv("a", 0, "1"), kv("b", 0, "2"), kv("c", 0, "3"))

        vss.deleteObject(deleteObjectRequest { storeId = store; keyValue = kv("a", 1) }).getOrThrow()
        expectError(Code.NOT_FOUND, Vss.ErrorCode.NO_SUCH_KEY_EXCEPTION) { vss.getObject(getObjectRequest { storeId = store; key = "a" }) }
        // Deleting again, or with a version that does not match, succeeds and changes nothing.
        vss.deleteObject(deleteObjectRequest { storeId = store; keyValue = kv("a", 1) }).getOrThrow()
        vss.deleteObject(deleteObjectRequest { storeId = store; keyValue = kv("b", 9) }).getOrThrow()
        assertEquals("2", vss.get(store, "b").value.toStringUtf8())
        vss.deleteObject(deleteObjectRequest { storeId = store; keyValue = kv("b", -1) }).getOrThrow()
        expectError(Code.NOT_FOUND, Vss.ErrorCode.NO_SUCH_KEY_EXCEPTION) { vss.getObject(getObjectRequest { storeId = store; key = "b" }) }

        // PutObjects deletes in the same transaction as it writes.
        vss.putObjects(
            putObjectRequest {
                storeId = store
                transactionItems += kv("d", 0, "4")
                deleteItems += kv("c", 1)
            },
        ).getOrThrow()
        val left = vss.listKeyVersions(listKeyVersionsRequest { storeId = store }).getOrThrow()
        assertEquals(listOf("d"), left.keyVersionsList.map { it.key })
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `version conflicts are ABORTED and write nothing`(transport: Transport) = runBlocking<Unit> {
        val vss = client(transport)
        val store = newStore()
        vss.put(store, kv("k", 0, "v1"))

        expectError(Code.ABORTED, Vss.ErrorCode.CONFLICT_EXCEPTION) {
            vss.putObjects(putObjectRequest { storeId = store; transactionItems += kv("k", 0, "again") })
        }
        expectError(Code.ABORTED, Vss.ErrorCode.CONFLICT_EXCEPTION) {
            vss.putObjects(putObjectRequest { storeId = store; transactionItems += kv("k", 7, "stale") })
        }
        // All or nothing: the new key of a conflicting request is not written either.
        expectError(Code.ABORTED, Vss.ErrorCode.CONFLICT_EXCEPTION) {
            vss.putObjects(putObjectRequest { storeId = store; transactionItems += listOf(kv("new", 0, "n"), kv("k", 5, "x")) })
        }
        expectError(Code.NOT_FOUND, Vss.ErrorCode.NO_SUCH_KEY_EXCEPTION) { vss.getObject(getObjectRequest { storeId = store; key = "new" }) }
        // A global version that does not match conflicts too.
        expectError(Code.ABORTED, Vss.ErrorCode.CONFLICT_EXCEPTION) {
            vss.putObjects(putObjectRequest { storeId = store; globalVersion = 3; transactionItems += kv("new", 0, "n") })
        }
        // A delete item for a missing key conflicts.
        expectError(Code.ABORTED, Vss.ErrorCode.CONFLICT_EXCEPTION) {
            vss.putObjects(putObjectRequest { storeId = store; deleteItems += kv("missing", -1) })
        }
        val k = vss.get(store, "k")
        assertEquals(1, k.version)
        assertEquals("v1", k.value.toStringUtf8())
        assertEquals(0, vss.get(store, "global_version").version)
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `missing keys are NOT_FOUND`(transport: Transport) = runBlocking<Unit> {
        val vss = client(transport)
        val e = expectError(Code.NOT_FOUND, Vss.ErrorCode.NO_SUCH_KEY_EXCEPTION) {
            vss.getObject(getObjectRequest { storeId = newStore(); key = "nothing here" })
        }
        assertFalse(e.message.isNullOrEmpty())
        // A store never written to still has a global version: 0.
        assertEquals(0, vss.get(newStore(), "global_version").version)
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `users are isolated, whichever way they authenticate`(transport: Transport) = runBlocking<Unit> {
        val alice = client(transport, Credentials.signature(SignatureKey.generate()))
        val bob = client(transport, Credentials.signature(SignatureKey.generate()))
        // Carol's provider mints a fresh token for every request, always for the same user.
        val carolTokens = AtomicInteger()
        val carolId = "carol-" + UUID.randomUUID()
        val carol = client(transport, Credentials.bearer { carolTokens.incrementAndGet(); issuer.token(carolId) })
        val store = "shared-store-name"
        val key = "wallet/seed-backup-" + UUID.randomUUID()

        alice.put(store, kv(key, 0, "alice's"), globalVersion = 0)

        for (other in listOf(bob, carol)) {
            expectError(Code.NOT_FOUND, Vss.ErrorCode.NO_SUCH_KEY_EXCEPTION) { other.getObject(getObjectRequest { storeId = store; this.key = key }) }
            val listing = other.listKeyVersions(listKeyVersionsRequest { storeId = store; keyPrefix = key }).getOrThrow()
            assertEquals(0, listing.keyVersionsCount)
            // Creating the same key is no conflict: it is another user's key.
            other.put(store, kv(key, 0, "not alice's"))
        }
        assertEquals("alice's", alice.get(store, key).value.toStringUtf8())
        assertEquals(1, alice.get(store, "global_version").version)
        assertEquals("not alice's", bob.get(store, key).value.toStringUtf8())
        assertEquals("not alice's", carol.get(store, key).value.toStringUtf8())
        assertTrue(carolTokens.get() >= 3, "the bearer provider is asked for every request")
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Transport::class)
    fun `requests without valid credentials are UNAUTHENTICATED`(transport: Transport) = runBlocking<Unit> {
        val request = getObjectRequest { storeId = newStore(); key = "k" }
        val stale = Clock.fixed(Instant.now().minus(Duration.ofHours(48)), ZoneOffset.UTC)
        val cases = mapOf(
            "no credentials" to Credentials.NONE,
            "signature two days old" to Credentials.signature(SignatureKey.generate(), stale),
            "expired token" to Credentials.bearer(issuer.token("dave", Instant.now().minusSeconds(3600))),
            "token of another issuer" to Credentials.bearer(TestJwtIssuer().token("dave")),
            "malformed header" to Credentials { "not a valid header" },
        )
        for ((name, credentials) in cases) {
            val e = expectError(Code.UNAUTHENTICATED, Vss.ErrorCode.AUTH_EXCEPTION) { client(transport, credentials).getObject(request) }
            assertFalse(e.message.isNullOrEmpty(), name)
        }
    }
}
