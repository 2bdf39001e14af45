package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.connectrpc.protocols.NetworkProtocol
import com.google.protobuf.ByteString
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import okhttp3.Interceptor
import okhttp3.OkHttpClient
import okhttp3.Protocol
import okhttp3.Response
import okhttp3.ResponseBody.Companion.toResponseBody
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import vss.v1.getChangeCursorRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.time.Clock
import java.time.Duration
import java.time.Instant
import java.time.ZoneId
import java.time.ZoneOffset
import java.util.Base64
import java.util.Collections
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/**
 * LnurlAuthTest logs in with LNURL-auth at real vss-servers that issue the JWTs themselves
 * (`--lnurl-auth`), and at fake issuers for the answers a real one never gives.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LnurlAuthTest {
    /** Accepts signatures and its own tokens, which live 2 minutes. */
    private lateinit var server: VssServer

    /** Accepts only its own tokens: another issuer key, so it refuses [server]'s. */
    private lateinit var other: VssServer

    private val clients = Collections.synchronizedList(mutableListOf<VssClient>())
    private val http = Collections.synchronizedList(mutableListOf<OkHttpClient>())

    @BeforeAll
    fun startServers() {
        server = VssServer.startLnurlAuth(listOf("--auth", "signature,jwt", "--lnurl-token-ttl", "2m"))
        other = VssServer.startLnurlAuth(listOf("--auth", "jwt"))
    }

    @AfterAll
    fun stopServers() {
        clients.forEach { it.close() }
        http.forEach { it.dispatcher.executorService.shutdown(); it.connectionPool.evictAll() }
        server.close()
        other.close()
    }

    /**
     * Logins is the OkHttp client of a login, counting its requests for LNURLs and for tokens
     * (by path, the real issuer's or the fake one's); [intercept] may answer a request itself
     * or change it.
     */
    private inner class Logins(intercept: (Interceptor.Chain) -> Response = { it.proceed(it.request()) }) {
        val lnurls = AtomicInteger()
        val verifies = AtomicInteger()
        val http: OkHttpClient = OkHttpClient.Builder().addInterceptor { chain ->
            when (chain.request().url.encodedPath) {
                "/auth/lnurl" -> lnurls.incrementAndGet()
                "/auth/lnurl/verify", "/verify" -> verifies.incrementAndGet()
            }
            intercept(chain)
        }.build().also { this@LnurlAuthTest.http += it }
    }

    private fun client(url: String, credentials: Credentials, protocol: NetworkProtocol = NetworkProtocol.CONNECT, retry: RetryPolicy = RetryPolicy.DEFAULT): VssClient =
        VssClients.create(url, credentials, protocol = protocol, retry = retry).also { clients += it }

    private fun quick(attempts: Int) = RetryPolicy(maxAttempts = attempts, initialBackoff = Duration.ofMillis(10), maxBackoff = Duration.ofMillis(20))

    private fun newStore() = "lnurl-" + UUID.randomUUID()

    private fun get(store: String, key: String) = getObjectRequest { storeId = store; this.key = key }

    private fun put(store: String, key: String, value: String) = putObjectRequest {
        storeId = store
        transactionItems += keyValue { this.key = key; version = 0; this.value = ByteString.copyFromUtf8(value) }
    }

    /** Returns the claims of a JWT, as JSON text. */
    private fun claims(token: String) = String(Base64.getUrlDecoder().decode(token.split('.')[1]))

    @Test
    fun `concurrent first calls make one login, the token is reused, and the user is the linking key`() = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val store = newStore()
        client(server.baseUrl, Credentials.signature(key)).putObjects(put(store, "k", "v")).getOrThrow()

        // The LNURL is answered slowly, so that every first call finds the login under way.
        val logins = Logins { chain ->
            if (chain.request().url.encodedPath == "/auth/lnurl") Thread.sleep(300)
            chain.proceed(chain.request())
        }
        val domains = Collections.synchronizedList(mutableListOf<String>())
        val auth = Credentials.lnurlAuth(server.lnurl, { domain -> domains += domain; key }, logins.http)
        val vss = client(server.baseUrl, auth)

        // Ten suspending calls and ten blocking ones, at once, all before any token exists.
        val blocking = List(10) {
            val got = arrayOfNulls<String>(1)
            thread { got[0] = vss.getObjectBlocking(get(store, "k")).execute().getOrThrow().value.value.toStringUtf8() } to got
        }
        val suspending = List(10) { async { vss.getObject(get(store, "k")).getOrThrow().value.value.toStringUtf8() } }.awaitAll()
        blocking.forEach { (t, _) -> t.join() }
        assertEquals(List(20) { "v" }, suspending + blocking.map { (_, got) -> got[0] }, "the linking key's user reads the signature user's data")
        assertEquals(1, logins.lnurls.get(), "LNURL requests for 20 concurrent calls")
        assertEquals(1, logins.verifies.get(), "token requests for 20 concurrent calls")
        assertEquals(listOf("localhost"), domains)

        // More calls, a stream among them, carry the same token.
        vss.putObjects(put(store, "k2", "from lnurl")).getOrThrow()
        assertEquals(listOf("k", "k2"), vss.listAll(listKeyVersionsRequest { storeId = store }).keyVersionsList.map { it.key }.sorted())
        val cursor = vss.getChangeCursor(getChangeCursorRequest { storeId = store }).getOrThrow().cursor
        withTimeout(20_000) { vss.watchChanges(store, cursor).first() }
        assertEquals(1, logins.verifies.get(), "token requests after more calls and a stream")

        // The token's subject is the linking key, and its data is the signature user's.
        assertTrue(claims(auth.token()).contains("\"sub\":\"${key.publicKeyHex}\""), claims(auth.token()))
        val read = client(server.baseUrl, Credentials.signature(key)).getObject(get(store, "k2")).getOrThrow()
        assertEquals("from lnurl", read.value.value.toStringUtf8())
    }

    @Test
    fun `the token is renewed shortly before it expires`() = runBlocking<Unit> {
        val start = Instant.now()
        val clock = SettableClock(start)
        val logins = Logins()
        val auth = Credentials.lnurlAuth(server.lnurl, SignatureKey.generate(), logins.http, clock = clock)
        val vss = client(server.baseUrl, auth)
        val store = newStore()
        vss.getObject(get(store, "global_version")).getOrThrow()
        val first = auth.token()

        // The token lives 2 minutes; it is kept until 60 s before its exp.
        clock.now = start.plusSeconds(50)
        vss.getObject(get(store, "global_version")).getOrThrow()
        assertEquals(1, logins.verifies.get(), "logins 50 s after the first")
        assertEquals(first, auth.token())

        clock.now = start.plusSeconds(70)
        vss.getObject(get(store, "global_version")).getOrThrow()
        assertEquals(2, logins.verifies.get(), "logins 70 s after the first")
        // (The new token is due too by this clock, 70 s ahead of the server's: token() logs
        // in once more.)
        assertNotEquals(first, auth.token(), "the token was not replaced")

        // With refreshBefore = 0 the token is kept up to its exp.
        val lazyLogins = Logins()
        val lazy = Credentials.lnurlAuth(server.lnurl, SignatureKey.generate(), lazyLogins.http, refreshBefore = Duration.ZERO, clock = clock)
        clock.now = start
        val token = lazy.token()
        clock.now = start.plusSeconds(110)
        assertEquals(token, lazy.token())
        assertEquals(1, lazyLogins.verifies.get(), "logins 110 s after the first")
        clock.now = start.plusSeconds(180)
        assertNotEquals(token, lazy.token())
        assertEquals(2, lazyLogins.verifies.get(), "logins 180 s after the first")
    }

    @ParameterizedTest
    @EnumSource(names = ["CONNECT", "GRPC_WEB", "GRPC"])
    fun `a token the server refuses is dropped, so the next call logs in again`(protocol: NetworkProtocol) = runBlocking<Unit> {
        val key = SignatureKey.generate()
        val logins = Logins()
        // Tokens of server, sent to other, which has its own issuer key.
        val auth = Credentials.lnurlAuth(server.lnurl, key, logins.http)
        val vss = client(other.baseUrl, auth, protocol, retry = quick(5))
        for (i in 1..2) {
            val result = vss.getObject(get(newStore(), "global_version"))
            assertIs<ResponseMessage.Failure<*>>(result)
            assertEquals(Code.UNAUTHENTICATED, result.cause.code)
            assertEquals(i, logins.verifies.get(), "logins after call $i")
        }
        val blocking = vss.getObjectBlocking(get(newStore(), "global_version")).execute()
        assertIs<ResponseMessage.Failure<*>>(blocking)
        assertEquals(Code.UNAUTHENTICATED, blocking.cause.code)
        assertEquals(3, logins.verifies.get(), "logins after a blocking call")
        // A write refused is made once, and drops the token too.
        val write = vss.putObjects(put(newStore(), "k", "v"))
        assertIs<ResponseMessage.Failure<*>>(write)
        assertEquals(Code.UNAUTHENTICATED, write.cause.code)
        assertEquals(4, logins.verifies.get(), "logins after a write")
        // So does a refused stream (over gRPC-Web a "trailers-only" response).
        val stream = assertFailsWith<ConnectException> {
            withTimeout(20_000) { vss.watchChanges(newStore(), "", reconnect = quick(5)).collect() }
        }
        assertEquals(Code.UNAUTHENTICATED, stream.code)
        assertEquals(5, logins.verifies.get(), "logins after a stream")

        // The same key logs in at other's own issuer; that server has no signature scheme.
        val own = client(other.baseUrl, Credentials.lnurlAuth(other.lnurl, key, logins.http), protocol)
        own.putObjects(put("s", "k", "v")).getOrThrow()
        assertEquals("v", own.getObject(get("s", "k")).getOrThrow().value.value.toStringUtf8())
    }

    @Test
    fun `only the refused token is dropped, and invalidate drops any`() {
        val logins = Logins()
        val auth = Credentials.lnurlAuth(server.lnurl, SignatureKey.generate(), logins.http)
        val token = auth.token()
        assertEquals("Bearer $token", auth.authorization())
        auth.refused("Bearer an.older.token") // a request with a token replaced since
        assertEquals(token, auth.token())
        assertEquals(1, logins.verifies.get())
        auth.refused("Bearer $token")
        val second = auth.token()
        assertNotEquals(token, second)
        assertEquals(2, logins.verifies.get())
        auth.invalidate()
        auth.token()
        assertEquals(3, logins.verifies.get())
    }

    @Test
    fun `a wrong signature is refused as unauthenticated and not retried`() = runBlocking<Unit> {
        // The key sent is not the one that signed: the server finds the signature invalid.
        val stranger = SignatureKey.generate().publicKeyHex
        val logins = Logins { chain ->
            val url = chain.request().url
            if (url.encodedPath != "/auth/lnurl/verify") return@Logins chain.proceed(chain.request())
            chain.proceed(chain.request().newBuilder().url(url.newBuilder().setQueryParameter("key", stranger).build()).build())
        }
        val vss = client(server.baseUrl, Credentials.lnurlAuth(server.lnurl, SignatureKey.generate(), logins.http), retry = quick(5))
        val result = vss.getObject(get(newStore(), "global_version"))
        assertIs<ResponseMessage.Failure<*>>(result)
        assertEquals(Code.UNAUTHENTICATED, result.cause.code)
        assertTrue(result.cause.message!!.contains("LNURL-auth refused (status 403): invalid signature"), result.cause.message)
        assertEquals(1, logins.verifies.get(), "a refused login is not retried")
    }

    @Test
    fun `an issuer answering 503 is retried`() = runBlocking<Unit> {
        val failures = AtomicInteger(2)
        val logins = Logins { chain ->
            if (chain.request().url.encodedPath == "/auth/lnurl" && failures.getAndDecrement() > 0) {
                answer(chain, 503, "try later")
            } else {
                chain.proceed(chain.request())
            }
        }
        val auth = Credentials.lnurlAuth(server.lnurl, SignatureKey.generate(), logins.http)
        val vss = client(server.baseUrl, auth, retry = quick(5))
        vss.getObject(get(newStore(), "global_version")).getOrThrow()
        assertEquals(3, logins.lnurls.get(), "LNURL requests")
        assertEquals(1, logins.verifies.get(), "token requests")

        // The blocking twin retries the same way.
        auth.invalidate()
        failures.set(2)
        vss.getObjectBlocking(get(newStore(), "global_version")).execute().getOrThrow()
        assertEquals(6, logins.lnurls.get(), "LNURL requests")
        assertEquals(2, logins.verifies.get(), "token requests")
    }

    /** Failure is a way a login goes wrong, and how it must be reported. */
    private class Failure(
        val name: String,
        val lnurl: Pair<Int, String>,
        val verify: Pair<Int, String> = 200 to "",
        val code: Code,
        val message: String,
        val verifies: Int,
        val url: String = FAKE_ISSUER,
        val keyFails: Boolean = false,
    )

    @Test
    fun `each way a login fails is reported with its code`() = runBlocking<Unit> {
        val login = 200 to "$FAKE/verify?tag=login&k1=$K1"
        val failures = listOf(
            Failure("no issuer", 404 to "404 page not found", code = Code.UNAUTHENTICATED, message = "LNURL-auth: GET $FAKE_ISSUER: status 404", verifies = 0),
            Failure("unreachable", login, url = "http://127.0.0.1:1/auth/lnurl", code = Code.UNAVAILABLE, message = "LNURL-auth: GET http://127.0.0.1:1/auth/lnurl", verifies = 0),
            Failure("issuer down", 502 to "bad gateway", code = Code.UNAVAILABLE, message = "status 502", verifies = 0),
            Failure("not a URL", 200 to "hello", code = Code.UNAUTHENTICATED, message = "not an LNURL", verifies = 0),
            Failure("bech32", 200 to "lnurl1dp68gurn8ghj7", code = Code.UNAUTHENTICATED, message = "not an LNURL", verifies = 0),
            Failure("not a login", 200 to "$FAKE/verify?tag=channelRequest&k1=$K1", code = Code.UNAUTHENTICATED, message = "not a login LNURL", verifies = 0),
            Failure("short k1", 200 to "$FAKE/verify?tag=login&k1=00ff", code = Code.UNAUTHENTICATED, message = "32-byte k1", verifies = 0),
            Failure("k1 not hex", 200 to "$FAKE/verify?tag=login&k1=${"zz".repeat(32)}", code = Code.UNAUTHENTICATED, message = "32-byte k1", verifies = 0),
            Failure("no linking key", login, keyFails = true, code = Code.UNAUTHENTICATED, message = "linking key for lnurl.invalid: locked", verifies = 0),
            Failure("refused", login, 403 to """{"status":"ERROR","reason":"k1 already used"}""", Code.UNAUTHENTICATED, "refused (status 403): k1 already used", 1),
            Failure("ERROR with status 200", login, 200 to """{"status":"ERROR","reason":"no"}""", Code.UNAUTHENTICATED, "refused (status 200): no", 1),
            Failure("issuer failing", login, 503 to """{"status":"ERROR","reason":"service unavailable"}""", Code.UNAVAILABLE, "service unavailable", 3),
            Failure("rate limited", login, 429 to "slow down", Code.UNAVAILABLE, "status 429 without a token", 3),
            Failure("OK without a token", login, 200 to """{"status":"OK"}""", Code.UNAUTHENTICATED, "status 200 without a token", 1),
            Failure("not JSON", login, 200 to "<html>", Code.UNAUTHENTICATED, "status 200 without a token", 1),
            Failure("token is not a JWT", login, 200 to """{"status":"OK","token":"opaque"}""", Code.UNAUTHENTICATED, "not a JWT", 1),
            Failure("exp is not a number", login, 200 to """{"status":"OK","token":"${jwt("""{"exp":"soon"}""")}"}""", Code.UNAUTHENTICATED, "numeric exp", 1),
            Failure("payload is not an object", login, 200 to """{"status":"OK","token":"${jwt("[1]")}"}""", Code.UNAUTHENTICATED, "numeric exp", 1),
            // The answer is read up to 64 KiB: the rest of a longer one is lost, and with it the JSON.
            Failure("answer over 64 KiB", login, 200 to """{"status":"OK","token":"${jwt("{}")}","pad":"${"x".repeat(70_000)}"}""", Code.UNAUTHENTICATED, "without a token", 1),
        )
        for (f in failures) {
            val logins = Logins { chain -> fakeIssuer(chain, f.lnurl, f.verify) }
            val auth = if (f.keyFails) {
                Credentials.lnurlAuth(f.url, { throw IllegalStateException("locked") }, logins.http)
            } else {
                Credentials.lnurlAuth(f.url, SignatureKey.generate(), logins.http)
            }
            val result = client(server.baseUrl, auth, retry = quick(3)).getObject(get(newStore(), "k"))
            assertIs<ResponseMessage.Failure<*>>(result, f.name)
            assertEquals(f.code, result.cause.code, "${f.name}: ${result.cause.message}")
            assertTrue(result.cause.message!!.contains(f.message), "${f.name}: ${result.cause.message}")
            assertEquals(f.verifies, logins.verifies.get(), "${f.name}: token requests")
            // token() reports the same failure.
            assertEquals(f.code, assertFailsWith<ConnectException>(f.name) { auth.token() }.code)
        }
    }

    @Test
    fun `a token without exp is kept`() {
        val token = jwt("""{"sub":"x"}""")
        val logins = Logins { chain -> fakeIssuer(chain, 200 to "$FAKE/verify?tag=login&k1=$K1", 200 to """{"status":"OK","token":"$token"}""") }
        val auth = Credentials.lnurlAuth(FAKE_ISSUER, SignatureKey.generate(), logins.http, clock = SettableClock(Instant.ofEpochSecond(1L shl 40)))
        repeat(3) { assertEquals("Bearer $token", auth.authorization()) }
        assertEquals(1, logins.verifies.get())
    }

    @Test
    fun `the signed LNURL carries the challenge, a DER signature and the key`() {
        val key = SignatureKey.generate()
        val seen = mutableListOf<okhttp3.HttpUrl>()
        val logins = Logins { chain ->
            seen += chain.request().url
            fakeIssuer(chain, 200 to "$FAKE/verify?tag=login&k1=$K1&extra=1", 200 to """{"status":"OK","token":"${jwt("{}")}"}""")
        }
        Credentials.lnurlAuth(FAKE_ISSUER, key, logins.http).token()
        val signed = seen.last()
        assertEquals(listOf("tag", "k1", "extra", "sig", "key"), signed.queryParameterNames.toList())
        assertEquals(K1, signed.queryParameter("k1"))
        assertEquals(key.publicKeyHex, signed.queryParameter("key"))
        val k1 = ByteArray(32) { i -> K1.substring(2 * i, 2 * i + 2).toInt(16).toByte() }
        assertEquals(key.signDer(k1).toHex(), signed.queryParameter("sig"))
    }

    @Test
    fun `the configuration is checked`() {
        val key = SignatureKey.generate()
        for (url in listOf("", "ftp://host/auth/lnurl", "lnurl1dp68gurn8ghj7", "/auth/lnurl")) {
            assertThrows<IllegalArgumentException>(url) { Credentials.lnurlAuth(url, key) }
        }
        assertThrows<IllegalArgumentException> { Credentials.lnurlAuth(FAKE_ISSUER, key, refreshBefore = Duration.ofSeconds(-1)) }
        assertEquals(Duration.ofSeconds(60), LnurlAuth.DEFAULT_REFRESH_BEFORE)
    }

    @Test
    fun `the README's LNURL-auth example works`() = runBlocking<Unit> {
        assertEquals("greeting v1: hello", readmeLnurlExample(server.lnurl, server.baseUrl))
    }

    /** SettableClock is a clock the test moves. */
    private class SettableClock(@Volatile var now: Instant) : Clock() {
        override fun instant(): Instant = now
        override fun getZone(): ZoneId = ZoneOffset.UTC
        override fun withZone(zone: ZoneId?): Clock = this
    }

    private companion object {
        /** The fake issuer's host: a name that never resolves, for the interceptor answers. */
        const val FAKE = "http://lnurl.invalid"
        const val FAKE_ISSUER = "$FAKE/auth/lnurl"
        const val K1 = "0000000000000000000000000000000000000000000000000000000000000001"

        /** Returns an unsigned token with the given claims; the client never verifies it. */
        fun jwt(payload: String): String {
            val enc = Base64.getUrlEncoder().withoutPadding()
            return enc.encodeToString("""{"alg":"ES256"}""".toByteArray()) + "." + enc.encodeToString(payload.toByteArray()) + ".c2ln"
        }

        fun answer(chain: Interceptor.Chain, code: Int, body: String): Response = Response.Builder()
            .request(chain.request())
            .protocol(Protocol.HTTP_1_1)
            .code(code)
            .message("fake")
            .body(body.toResponseBody())
            .build()

        /**
         * Answers the requests for the fake issuer: [lnurl] at /auth/lnurl, [verify] at /verify
         * when the request has a signature and a key. Requests for other hosts go through.
         */
        fun fakeIssuer(chain: Interceptor.Chain, lnurl: Pair<Int, String>, verify: Pair<Int, String>): Response {
            val url = chain.request().url
            if (url.host != "lnurl.invalid") return chain.proceed(chain.request())
            val (code, body) = when (url.encodedPath) {
                "/auth/lnurl" -> lnurl
                "/verify" -> if (url.queryParameter("sig").isNullOrEmpty() || url.queryParameter("key")?.length != 66) {
                    400 to """{"status":"ERROR","reason":"no sig or key"}"""
                } else {
                    verify
                }
                else -> 404 to "not found"
            }
            return answer(chain, code, body)
        }
    }
}
