package io.github.govss.vss

import java.time.Clock

/**
 * Credentials produce the `Authorization` header of each request, or null to send none.
 * They are asked once per request, so a signature carries the current time and a bearer
 * token can be refreshed by its provider.
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
         * (for example by LNURL-auth).
         */
        @JvmStatic
        fun bearer(tokenProvider: () -> String): Credentials =
            Credentials { "Bearer " + tokenProvider() }
    }
}
