package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import okhttp3.OkHttpClient
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import vss.v1.Vss
import vss.v1.deleteObjectRequest
import vss.v1.getChangeCursorRequest
import vss.v1.getLeaseRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listChangesRequest
import vss.v1.putObjectRequest
import vss.v1.releaseLeaseRequest
import java.time.Duration
import java.util.Collections
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * LeaseTest holds leases on a real vss-server through the client's VssLease: one holder at
 * a time, fenced writes refused by the server once the lease moved on and by the client
 * once it knows the lease is lost (without sending them), renewals that keep a lease, and
 * release.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LeaseTest {
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

    /** Device is a client of one user, with a count of the writes it sent to the network. */
    private inner class Device(key: SignatureKey, id: String, url: String = server.baseUrl) {
        val writesSent = AtomicInteger()
        val vss: VssClient = run {
            val counting = OkHttpClient.Builder().addInterceptor { chain ->
                val path = chain.request().url.encodedPath
                if (path.endsWith("/PutObjects") || path.endsWith("/DeleteObject")) writesSent.incrementAndGet()
                chain.proceed(chain.request())
            }.build().also { http += it }
            VssClients.create(url, Credentials.signature(key), httpClient = counting, deviceId = id).also { clients += it }
        }
    }

    private fun newStore() = "lease-" + UUID.randomUUID()

    private fun put(store: String, key: String) = putObjectRequest {
        storeId = store
        transactionItems += keyValue { this.key = key; version = -1; value = ByteString.copyFromUtf8("by the holder") }
    }

    private suspend fun lease(vss: VssClient, store: String): Vss.Lease =
        vss.getLease(getLeaseRequest { storeId = store; name = "node" }).getOrThrow().lease

    private suspend fun exists(vss: VssClient, store: String, key: String): Boolean =
        vss.getObject(getObjectRequest { storeId = store; this.key = key }) is ResponseMessage.Success

    @Test
    fun `one holder at a time, and its fenced writes carry its device id`() = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val phone = Device(key, "phone")
        val laptop = Device(key, "laptop")
        val store = newStore()
        val start = phone.vss.getChangeCursor(getChangeCursorRequest { storeId = store }).getOrThrow().cursor

        phone.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(30)).use { held ->
            assertEquals("phone", held.holder, "the holder defaults to the device id")
            assertTrue(held.isHeld)
            val refused = assertFailsWith<LeaseHeldException> { laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(30)) }
            assertEquals("phone", refused.lease.holder)
            assertEquals(held.token, refused.lease.token)
            assertEquals(Code.FAILED_PRECONDITION, refused.cause.code)

            held.putObjects(put(store, "monitor")).getOrThrow()
            held.deleteObject(deleteObjectRequest { storeId = store; keyValue = keyValue { this.key = "monitor"; version = -1 } }).getOrThrow()
            val changes = phone.vss.listChanges(listChangesRequest { storeId = store; cursor = start }).getOrThrow().changesList
            assertEquals(listOf("monitor" to false, "monitor" to true), changes.map { it.key to it.deleted })
            assertTrue(changes.all { it.deviceId == "phone" }, "fenced writes carry the device id: $changes")

            // A write fenced with a token the lease does not hold changes nothing.
            val stale = laptop.vss.putObjects(
                put(store, "stale"),
                mapOf("vss-lease-name" to listOf("node"), "vss-lease-token" to listOf((held.token + 1).toString())),
            )
            assertIs<ResponseMessage.Failure<*>>(stale)
            assertEquals(Code.FAILED_PRECONDITION, stale.cause.code)
            assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_NOT_HELD, stale.cause.feedError()?.reason)
            assertFalse(exists(phone.vss, store, "stale"))

            // The lease guards one store only.
            assertFailsWith<IllegalArgumentException> { held.putObjects(put(newStore(), "elsewhere")) }
        }
        // Closed: released at once, so the other device can take it.
        assertFalse(lease(phone.vss, store).held)
        laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(30)).use { next ->
            assertEquals("laptop", next.holder)
            assertTrue(next.release())
            assertFalse(next.release(), "a second release ends nothing")
            assertFailsWith<LeaseLostException> { next.putObjects(put(store, "after release")) }
        }
    }

    @Test
    fun `the loser's fenced write is refused by the server, then by the client without sending it`() = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val phone = Device(key, "phone")
        val laptop = Device(key, "laptop")
        val store = newStore()
        val lostEvents = AtomicInteger()
        val phoneLease = phone.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(30), onLost = { lostEvents.incrementAndGet() })
        // The grant ends behind the phone's back (as when it was suspended past its time),
        // and the laptop takes the lease.
        assertTrue(laptop.vss.releaseLease(releaseLeaseRequest { storeId = store; name = "node"; token = phoneLease.token }).getOrThrow().released)
        val laptopLease = laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(30))
        assertTrue(laptopLease.token > phoneLease.token, "a new grant has a larger token")

        val sentBefore = phone.writesSent.get()
        val byServer = assertFailsWith<LeaseLostException> { phoneLease.putObjects(put(store, "loser")) }
        assertEquals(sentBefore + 1, phone.writesSent.get(), "the first write was sent and refused by the server")
        assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_NOT_HELD, (byServer.cause as com.connectrpc.ConnectException).feedError()?.reason)
        assertFalse(phoneLease.isHeld)

        val byClient = assertFailsWith<LeaseLostException> { phoneLease.putObjects(put(store, "loser")) }
        assertFailsWith<LeaseLostException> { phoneLease.deleteObject(deleteObjectRequest { storeId = store; keyValue = keyValue { this.key = "x"; version = -1 } }) }
        assertEquals(sentBefore + 1, phone.writesSent.get(), "later writes are refused without being sent")
        assertEquals(phoneLease.token, byClient.token)
        assertFalse(exists(phone.vss, store, "loser"))
        assertEquals(1, lostEvents.get(), "onLost hears the loss once")

        laptopLease.putObjects(put(store, "winner")).getOrThrow()
        assertTrue(exists(phone.vss, store, "winner"))
        assertFalse(phoneLease.release(), "releasing a lost lease ends nothing")
        laptopLease.close()
    }

    @Test
    fun `a renewal answered LEASE_NOT_HELD loses the lease`() = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val phone = Device(key, "phone")
        val laptop = Device(key, "laptop")
        val store = newStore()
        val lost = CompletableDeferred<LeaseLostException>()
        val phoneLease = phone.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(3), onLost = { lost.complete(it) })
        assertTrue(laptop.vss.releaseLease(releaseLeaseRequest { storeId = store; name = "node"; token = phoneLease.token }).getOrThrow().released)

        // The next renewal, a second after the grant, is answered LEASE_NOT_HELD.
        val e = withTimeout(5_000) { lost.await() }
        assertEquals(Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_NOT_HELD, (e.cause as com.connectrpc.ConnectException).feedError()?.reason)
        assertFalse(phoneLease.isHeld)
        val sent = phone.writesSent.get()
        assertFailsWith<LeaseLostException> { phoneLease.putObjects(put(store, "k")) }
        assertEquals(sent, phone.writesSent.get(), "the write was not sent")
        phoneLease.close()
    }

    @Test
    fun `renewals that fail until the lease's time runs out lose it`() = runBlocking<Unit> {
        TcpProxy(server.address).use { proxy ->
            val key = SignatureKey.generate()
            val phone = Device(key, "phone", url = proxy.baseUrl)
            val laptop = Device(key, "laptop")
            val store = newStore()
            val lost = CompletableDeferred<LeaseLostException>()
            val phoneLease = phone.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(2), onLost = { lost.complete(it) })
            proxy.down = true
            proxy.cut()

            val e = withTimeout(5_000) { lost.await() }
            assertTrue(e.message!!.contains("time ran out"), e.message)
            assertFalse(phoneLease.isHeld)
            val sent = phone.writesSent.get()
            assertFailsWith<LeaseLostException> { phoneLease.putObjects(put(store, "k")) }
            assertEquals(sent, phone.writesSent.get(), "the write was not sent")
            // The client counts the time from before each request was sent, so it gives the
            // lease up no later than the server; the server's grant ends shortly after, and
            // someone else may take it.
            withTimeout(3_000) {
                while (lease(laptop.vss, store).held) delay(50)
            }
            laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(5)).close()
            phoneLease.close()
        }
    }

    @Test
    fun `renewals keep a lease past its time to live`() = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val phone = Device(key, "phone")
        val laptop = Device(key, "laptop")
        val store = newStore()
        val phoneLease = phone.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(2))
        val firstExpiry = phoneLease.lease.expiresAt.seconds
        delay(5_000)

        assertTrue(phoneLease.isHeld)
        assertNull(phoneLease.lost())
        val state = lease(laptop.vss, store)
        assertTrue(state.held, "the server still has the grant: $state")
        assertEquals(phoneLease.token, state.token)
        assertTrue(state.expiresAt.seconds > firstExpiry + 2, "renewals moved the expiry: $state")
        phoneLease.putObjects(put(store, "still mine")).getOrThrow()
        assertFailsWith<LeaseHeldException> { laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(2)) }

        phoneLease.close()
        assertFalse(lease(laptop.vss, store).held)
        laptop.vss.acquireLease(store, "node", ttl = Duration.ofSeconds(2)).use { next ->
            assertTrue(next.token > phoneLease.token)
        }
    }
}
