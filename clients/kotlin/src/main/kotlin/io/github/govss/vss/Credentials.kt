package io.github.govss.vss

import okhttp3.OkHttpClient
import java.time.Clock
import java.time.Duration

/**
 * Credentials produce the `Authorization` header of each request, or null to send none.
 * They are asked once per request, so a signature carries the current time and a bearer
 * token can be refreshed by its provider.
 *
 * They may block: the client asks on an I/O thread (`Dispatchers.IO`) for suspending calls
 * and streams, and on the calling thread for the blocking calls. A `ConnectException` they
 * throw fails the request with its code before anything is sent (`UNAVAILABLE` is retried as
 * the client's [RetryPolicy] says, `UNAUTHENTICATED` is not); any other exception fails it
 * with `UNKNOWN`, as a transport error does.
 */
fun interface Credentials {
    /** Returns the `Authorization` header value for the next request, or null for none. */
    fun authorization(): String?

    companion object {
        /** NONE sends no `Authorization` header, for servers run with `--auth none`. */
        @JvmField
        val NONE: Credentials = Credentials { null }

        /**
         * Returns credentials that sign every request with [key] at the time [clock] tells
         * (the VSS signature scheme; the server rejects times more than 24 hours off).
         */
        @JvmStatic
        @JvmOverloads
        fun signature(key: SignatureKey, clock: Clock = Clock.systemUTC()): Credentials =
            Credentials { key.header(clock.instant()) }

        /** Returns credentials that send `Authorization: Bearer <token>` with a fixed token. */
        @JvmStatic
        fun bearer(token: String): Credentials {
            require(token.isNotBlank()) { "bearer token must not be empty" }
            return Credentials { "Bearer $token" }
        }

        /**
         * Returns credentials that send `Authorization: Bearer <token>` with the token
         * [tokenProvider] returns for each request, for tokens that expire and are renewed
         * (for LNURL-auth, see [lnurlAuth]).
         */
        @JvmStatic
        fun bearer(tokenProvider: () -> String): Credentials =
            Credentials { "Bearer " + tokenProvider() }

        /**
         * Returns credentials that log in with LNURL-auth at the issuer [url] (such as
         * `https://vss.example.com/auth/lnurl` for a server run with `--lnurl-auth`), signing
         * its challenges with [linkingKey], and send the JWT they receive as a bearer token,
         * renewed [refreshBefore] ahead of its expiry by [clock]. The server's user is the
         * linking key's public key, the same user as [signature] with the same key. See
         * [LnurlAuth] for the exchange, the token's cache and how failures are reported.
         *
         * @param httpClient fetches the LNURL and the token (a new OkHttp client if null); a
         *   client without a call timeout gets [LnurlAuth.DEFAULT_CALL_TIMEOUT] for each
         *   request of a login.
         * @throws IllegalArgumentException when [url] is not an http or https URL.
         */
        @JvmStatic
        @JvmOverloads
        fun lnurlAuth(
            url: String,
            linkingKey: SignatureKey,
            httpClient: OkHttpClient? = null,
            refreshBefore: Duration = LnurlAuth.DEFAULT_REFRESH_BEFORE,
            clock: Clock = Clock.systemUTC(),
        ): LnurlAuth = LnurlAuth(url, { linkingKey }, httpClient, refreshBefore, clock)

        /**
         * Returns LNURL-auth credentials like the other [lnurlAuth], for wallets that derive
         * one linking key per domain (LUD-05, as vss-client-ng does from its seed):
         * [linkingKeyFor] returns the key for the domain of the LNURL the issuer answered.
         * It is called once per login, never concurrently; an exception it throws fails the
         * login with `UNAUTHENTICATED`.
         */
        @JvmStatic
        @JvmOverloads
        fun lnurlAuth(
            url: String,
            linkingKeyFor: (domain: String) -> SignatureKey,
            httpClient: OkHttpClient? = null,
            refreshBefore: Duration = LnurlAuth.DEFAULT_REFRESH_BEFORE,
            clock: Clock = Clock.systemUTC(),
        ): LnurlAuth = LnurlAuth(url, linkingKeyFor, httpClient, refreshBefore, clock)
    }
}
