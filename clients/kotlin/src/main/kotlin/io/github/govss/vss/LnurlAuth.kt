package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.google.protobuf.Struct
import com.google.protobuf.Value
import com.google.protobuf.util.JsonFormat
import okhttp3.HttpUrl
import okhttp3.HttpUrl.Companion.toHttpUrlOrNull
import okhttp3.OkHttpClient
import okhttp3.Request
import java.io.IOException
import java.time.Clock
import java.time.Duration
import java.time.Instant
import java.util.Base64
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import java.util.concurrent.locks.ReentrantLock

/**
 * LnurlAuth is [Credentials] that log in with LNURL-auth and send the JWT they receive as
 * `Authorization: Bearer <JWT>`, the exchange vss-client-ng's `LnurlAuthToJwtProvider` makes
 * with a server run with `--lnurl-auth`:
 *
 * 1. GET [url]; the issuer answers a LUD-04 login LNURL (`…?tag=login&k1=<64 hex digits>`) as
 *    plain text.
 * 2. Sign the 32 bytes of k1 with the linking key (ECDSA over secp256k1, DER encoded, low S)
 *    and GET the LNURL with `&sig=<signature hex>&key=<compressed public key hex>`.
 * 3. The answer is JSON `{"status":"OK","token":"<JWT>"}`, or
 *    `{"status":"ERROR","reason":"…"}`.
 *
 * The server's user is the linking key's public key, the same user as
 * [Credentials.signature] with the same key. The token is cached and shared by all requests
 * until [refreshBefore] ahead of its `exp` claim (a token without `exp` is kept until the
 * server refuses it); concurrent requests that find no valid token wait for a single login.
 * When the server answers `UNAUTHENTICATED` to a request that carried the cached token, the
 * client drops the token, so the next attempt logs in again.
 *
 * A login that fails in a way the issuer may recover from (an I/O error, a 5xx or 429 status)
 * fails the request with `UNAVAILABLE`, which the client retries as its [RetryPolicy] says;
 * any other failure (a refusal, an answer that is not a login LNURL or has no token, a
 * [linking key][Credentials.lnurlAuth] that cannot be had) fails it with `UNAUTHENTICATED`.
 * The issuer's answers are read up to 4 KiB for the LNURL and 64 KiB for the token.
 *
 * A login blocks the thread that asks for the header. The client asks on an I/O thread
 * (`Dispatchers.IO`) for suspending calls and for streams, and on the calling thread for the
 * blocking calls; [token] blocks its caller the same way.
 */
class LnurlAuth internal constructor(
    /** The issuer's URL, such as `https://vss.example.com/auth/lnurl`. */
    val url: String,
    private val linkingKeyFor: (domain: String) -> SignatureKey,
    httpClient: OkHttpClient?,
    /** How long before the token's `exp` a new one is fetched. */
    val refreshBefore: Duration,
    private val clock: Clock,
) : Credentials {
    private val issuer: HttpUrl = url.toHttpUrlOrNull()
        ?: throw IllegalArgumentException("LNURL-auth URL \"$url\" is not an http or https URL")

    private val http: OkHttpClient = (httpClient ?: OkHttpClient()).let { client ->
        if (client.callTimeoutMillis > 0) client else client.newBuilder().callTimeout(DEFAULT_CALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS).build()
    }

    /** The token with the time it is due for renewal (null: never), or null before a login. */
    private class Cached(val token: String, val renewAt: Instant?) {
        val authorization = "Bearer $token"
    }

    private val cached = AtomicReference<Cached?>()

    /** Held by the login in progress. */
    private val login = ReentrantLock()

    init {
        require(!refreshBefore.isNegative) { "refreshBefore must not be negative" }
    }

    /** Returns `Bearer <token>` with a valid token, logging in first when there is none. */
    override fun authorization(): String = valid()?.authorization ?: loggedIn().authorization

    /**
     * Returns the cached token while it is valid, and otherwise logs in for a new one,
     * blocking the calling thread.
     *
     * @throws ConnectException when the login fails: `UNAVAILABLE` when it may succeed later,
     *   `UNAUTHENTICATED` otherwise, `CANCELED` when the thread is interrupted while it waits
     *   for another thread's login.
     */
    fun token(): String = valid()?.token ?: loggedIn().token

    /** Drops the cached token; the next request logs in again. */
    fun invalidate() {
        cached.set(null)
    }

    /**
     * Drops the cached token if [authorization] is its header: the server refused it. A token
     * fetched since then, by a login that started after the refused request, is kept.
     */
    internal fun refused(authorization: String) {
        val current = cached.get()
        if (current != null && current.authorization == authorization) cached.compareAndSet(current, null)
    }

    /** Returns the cached token if it is not due for renewal. */
    private fun valid(): Cached? {
        val current = cached.get() ?: return null
        if (current.renewAt != null && !clock.instant().isBefore(current.renewAt)) return null
        return current
    }

    /** Returns a token after waiting for the login in progress, or after logging in. */
    private fun loggedIn(): Cached {
        try {
            login.lockInterruptibly()
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw ConnectException(Code.CANCELED, "LNURL-auth: interrupted while waiting for a login", e)
        }
        try {
            valid()?.let { return it } // another thread logged in while this one waited
            val (token, exp) = fetch()
            val renewAt = exp?.let { runCatching { it.minus(refreshBefore) }.getOrDefault(Instant.MIN) }
            return Cached(token, renewAt).also { cached.set(it) }
        } finally {
            login.unlock()
        }
    }

    /** Logs in: gets an LNURL, answers its challenge and returns the token with its `exp`. */
    private fun fetch(): Pair<String, Instant?> {
        val (status, body) = get(issuer, MAX_LNURL_BYTES)
        if (status != 200) throw loginError(status, "LNURL-auth: GET $url: status $status")
        val lnurl = body.toString(Charsets.UTF_8).trim()
        val login = lnurl.toHttpUrlOrNull()
            ?: throw unauthenticated("LNURL-auth: $url answered \"${short(lnurl)}\", not an LNURL")
        val k1 = login.queryParameter("k1")?.let(::hexBytes)
        if (login.queryParameter("tag") != "login" || k1 == null || k1.size != 32) {
            throw unauthenticated("LNURL-auth: \"${short(lnurl)}\" is not a login LNURL with a 32-byte k1")
        }
        val key = try {
            linkingKeyFor(login.host)
        } catch (e: Exception) {
            throw ConnectException(Code.UNAUTHENTICATED, "LNURL-auth: linking key for ${login.host}: ${e.message ?: e}", e)
        }
        val signed = login.newBuilder()
            .addQueryParameter("sig", key.signDer(k1).toHex())
            .addQueryParameter("key", key.publicKeyHex)
            .build()

        val (answerStatus, answer) = get(signed, MAX_ANSWER_BYTES)
        val json = parseObject(answer)
        val token = json?.string("token")
        val reason = json?.string("reason")
        when {
            answerStatus == 200 && !token.isNullOrEmpty() && !json?.string("status").equals("ERROR", ignoreCase = true) -> {}
            !reason.isNullOrEmpty() -> throw loginError(answerStatus, "LNURL-auth refused (status $answerStatus): $reason")
            else -> throw loginError(answerStatus, "LNURL-auth: status $answerStatus without a token")
        }
        return token!! to tokenExpiry(token)
    }

    /**
     * Fetches [target] and returns its status and at most [limit] bytes of its body. A
     * transport failure is `UNAVAILABLE`, so that the client retries it.
     */
    private fun get(target: HttpUrl, limit: Int): Pair<Int, ByteArray> {
        val request = Request.Builder().url(target).get().build()
        try {
            http.newCall(request).execute().use { response ->
                val body = response.body?.byteStream()?.use { it.readNBytes(limit) } ?: ByteArray(0)
                return response.code to body
            }
        } catch (e: IOException) {
            val shown = target.newBuilder().query(null).build() // k1, sig and key stay out
            throw ConnectException(Code.UNAVAILABLE, "LNURL-auth: GET $shown: ${e.message ?: e}", e)
        }
    }

    override fun toString(): String = "LnurlAuth($url)"

    companion object {
        /**
         * How long before its `exp` a cached token is replaced when no `refreshBefore` is
         * given: 60 seconds, as vss-client-ng and the Go client.
         */
        @JvmField
        val DEFAULT_REFRESH_BEFORE: Duration = Duration.ofSeconds(60)

        /**
         * The deadline of each request of a login when the OkHttp client has no call timeout
         * of its own: 30 s, as for the calls of [VssClients.create].
         */
        @JvmField
        val DEFAULT_CALL_TIMEOUT: Duration = Duration.ofSeconds(30)

        private const val MAX_LNURL_BYTES = 4 shl 10
        private const val MAX_ANSWER_BYTES = 64 shl 10
    }
}

/**
 * Gives a refused login its code: the issuer's failures (5xx, 429) may pass and are
 * `UNAVAILABLE`; every other refusal is `UNAUTHENTICATED`.
 */
private fun loginError(status: Int, message: String): ConnectException =
    ConnectException(if (status >= 500 || status == 429) Code.UNAVAILABLE else Code.UNAUTHENTICATED, message)

private fun unauthenticated(message: String) = ConnectException(Code.UNAUTHENTICATED, message)

/**
 * Reads the `exp` claim of a JWT without verifying the token (the server does), as
 * vss-client-ng does. A token without `exp` has none.
 */
internal fun tokenExpiry(token: String): Instant? {
    val parts = token.split('.')
    if (parts.size != 3) throw unauthenticated("LNURL-auth: the token is not a JWT")
    val payload = try {
        Base64.getUrlDecoder().decode(parts[1].trimEnd('='))
    } catch (_: IllegalArgumentException) {
        throw unauthenticated("LNURL-auth: the token's payload is not base64url")
    }
    val exp = parseObject(payload)?.let { it.fieldsMap["exp"] ?: Value.getDefaultInstance() }
    return when {
        exp == null -> throw unauthenticated("LNURL-auth: the token's payload is not a JSON object with a numeric exp")
        exp.kindCase == Value.KindCase.KIND_NOT_SET || exp.kindCase == Value.KindCase.NULL_VALUE -> null
        exp.kindCase == Value.KindCase.NUMBER_VALUE ->
            Instant.ofEpochSecond(exp.numberValue.toLong().coerceIn(Instant.MIN.epochSecond, Instant.MAX.epochSecond))
        else -> throw unauthenticated("LNURL-auth: the token's payload is not a JSON object with a numeric exp")
    }
}

/** Parses [json] as a JSON object, or returns null when it is not one. */
private fun parseObject(json: ByteArray): Struct? = try {
    Struct.newBuilder().also { JsonFormat.parser().merge(json.toString(Charsets.UTF_8), it) }.build()
} catch (_: Exception) {
    null
}

/** Returns the string member [name], or null when it is missing or not a string. */
private fun Struct.string(name: String): String? =
    fieldsMap[name]?.takeIf { it.kindCase == Value.KindCase.STRING_VALUE }?.stringValue

/** Returns the bytes of an even number of hex digits, or null. */
private fun hexBytes(hex: String): ByteArray? {
    if (hex.length % 2 != 0) return null
    val out = ByteArray(hex.length / 2)
    for (i in out.indices) {
        val hi = Character.digit(hex[2 * i], 16)
        val lo = Character.digit(hex[2 * i + 1], 16)
        if (hi < 0 || lo < 0) return null
        out[i] = (hi * 16 + lo).toByte()
    }
    return out
}

/** Cuts [s] for an error message. */
private fun short(s: String): String = if (s.length > 100) s.take(100) + "…" else s
