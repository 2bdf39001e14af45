package io.github.govss.vss

import java.security.KeyPairGenerator
import java.security.Signature
import java.time.Instant
import java.util.Base64

/** TestJwtIssuer signs RS256 JWTs with a fresh 2048-bit RSA key the test server trusts. */
class TestJwtIssuer {
    private val keyPair = KeyPairGenerator.getInstance("RSA").apply { initialize(2048) }.generateKeyPair()

    /** The public key as a PEM "PUBLIC KEY" block, for `--jwt-public-key-file`. */
    val publicKeyPem: String =
        "-----BEGIN PUBLIC KEY-----\n" +
            Base64.getMimeEncoder(64, "\n".toByteArray()).encodeToString(keyPair.public.encoded) +
            "\n-----END PUBLIC KEY-----\n"

    /** Returns a token for user [sub] that expires at [expires]. */
    fun token(sub: String, expires: Instant = Instant.now().plusSeconds(600)): String {
        val header = b64("""{"alg":"RS256","typ":"JWT"}""".toByteArray())
        val claims = b64("""{"sub":"$sub","iat":${expires.epochSecond - 600},"exp":${expires.epochSecond}}""".toByteArray())
        val signature = Signature.getInstance("SHA256withRSA").run {
            initSign(keyPair.private)
            update("$header.$claims".toByteArray())
            sign()
        }
        return "$header.$claims.${b64(signature)}"
    }

    private fun b64(bytes: ByteArray) = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes)
}
