package io.github.govss.vss

import org.bouncycastle.crypto.params.ECPublicKeyParameters
import org.bouncycastle.crypto.signers.ECDSASigner
import org.bouncycastle.crypto.signers.StandardDSAEncoding
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.math.BigInteger
import java.security.MessageDigest
import java.security.SecureRandom
import java.time.Instant
import kotlin.test.assertEquals
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

class SignatureKeyTest {
    /** The contract's test vector: secret key 32 bytes of 0x2a, time 1700000000. */
    private val vectorKey = SignatureKey(ByteArray(32) { 0x2a })
    private val vectorHeader = "035be5e9478209674a96e60f1f037f6176540fd001fa1d64694770c56a7709c42c" +
        "facd4f04afbbcd95d4bc143df56507f6407bd2a981ca10f216eb8888f7ceb711" +
        "7795ae377c33e6304af9c82f07e76408c9e846214fd4126e5f771626852e0d80" +
        "1700000000"

    @Test
    fun `matches the contract's test vector`() {
        assertEquals(vectorHeader, vectorKey.header(1_700_000_000L))
        assertEquals(vectorHeader, vectorKey.header(Instant.ofEpochSecond(1_700_000_000L, 999_000_000)))
        assertEquals(vectorHeader.substring(0, 66), vectorKey.publicKeyHex)
    }

    @Test
    fun `signs SHA-256 of the constant, the public key and the time, low-S`() {
        assertEquals(64, SignatureKey.SIGNING_CONSTANT.toByteArray(Charsets.US_ASCII).size)
        for (time in listOf(0L, 1L, 1_700_000_000L, 1_700_000_001L, 4_102_444_800L)) {
            val key = SignatureKey.generate()
            val header = key.header(time)
            assertEquals(66 + 128 + time.toString().length, header.length)
            assertEquals(key.publicKeyHex, header.substring(0, 66))
            assertEquals(time.toString(), header.substring(194))
            val r = BigInteger(header.substring(66, 130), 16)
            val s = BigInteger(header.substring(130, 194), 16)
            assertTrue(s <= SignatureKey.CURVE.n.shiftRight(1), "s must be low")
            val digest = MessageDigest.getInstance("SHA-256").run {
                update(SignatureKey.SIGNING_CONSTANT.toByteArray(Charsets.US_ASCII))
                update(key.publicKey)
                update(time.toString().toByteArray(Charsets.US_ASCII))
                digest()
            }
            val verifier = ECDSASigner()
            verifier.init(false, ECPublicKeyParameters(SignatureKey.CURVE.curve.decodePoint(key.publicKey), SignatureKey.CURVE))
            assertTrue(verifier.verifySignature(digest, r, s), "signature must verify")
            assertEquals(header, key.header(time), "signatures must be deterministic")
        }
    }

    @Test
    fun `signs LNURL-auth challenges in strict DER, low S, as the Go client does`() {
        // The Go client's signatures (decred's secp256k1, RFC 6979 as libsecp256k1) of two
        // challenges with the vector key: deterministic, so byte for byte the same.
        val vectors = mapOf(
            "0000000000000000000000000000000000000000000000000000000000000001" to
                "3044022066456007d0c1e5e23b9cda1b2b56965cb114d1cfd65e4aa1f9d447e533d9bb03022056924eb615ad75eb900545736ac3848e07463c9d67869362b967e03b0e09efc9",
            "00000000692a3c5e9b1d0c7e4f2a8d61c3b5e7f90a1b2c3d4e5f60718293a4b5" to
                "304402206936899146507d1b2678ab7110a040c266695f90086069a4a84f8f641d52fefb02206e49a8acf409abc59d7baa9a29675937a466d3b5e75b63bd3ae48d902ee79c96",
        )
        for ((k1, der) in vectors) assertEquals(der, vectorKey.signDer(unhex(k1)).toHex(), k1)
        // A challenge of n or more (a chance of 2^-128 for a random one) gets another valid
        // signature than libsecp256k1's: BouncyCastle reduces it mod n before deriving the
        // nonce, as RFC 6979 says, where libsecp256k1 and decred take it as it is.
        val high = unhex("ff".repeat(32))
        val (r, s) = StandardDSAEncoding.INSTANCE.decode(SignatureKey.CURVE.n, vectorKey.signDer(high))
        val verifier = ECDSASigner()
        verifier.init(false, ECPublicKeyParameters(SignatureKey.CURVE.curve.decodePoint(vectorKey.publicKey), SignatureKey.CURVE))
        assertTrue(verifier.verifySignature(high, r, s), "signature of a challenge over n must verify")
        assertTrue(s <= SignatureKey.CURVE.n.shiftRight(1), "s must be low")

        val random = SecureRandom()
        repeat(50) {
            val key = SignatureKey.generate()
            val k1 = ByteArray(32).also(random::nextBytes)
            val der = key.signDer(k1)
            // Strict DER: BouncyCastle's decoder refuses any other encoding of (r, s).
            val (r, s) = StandardDSAEncoding.INSTANCE.decode(SignatureKey.CURVE.n, der)
            assertTrue(s <= SignatureKey.CURVE.n.shiftRight(1), "s must be low")
            val verifier = ECDSASigner()
            verifier.init(false, ECPublicKeyParameters(SignatureKey.CURVE.curve.decodePoint(key.publicKey), SignatureKey.CURVE))
            assertTrue(verifier.verifySignature(k1, r, s), "signature must verify")
            assertTrue(der.size in 8..72, "DER length ${der.size}")
        }
        assertThrows<IllegalArgumentException> { vectorKey.signDer(ByteArray(31)) }
    }

    private fun unhex(hex: String) = ByteArray(hex.length / 2) { i -> hex.substring(2 * i, 2 * i + 2).toInt(16).toByte() }

    @Test
    fun `different times give different signatures`() {
        assertNotEquals(vectorKey.header(1_700_000_000L).substring(66, 194), vectorKey.header(1_700_000_001L).substring(66, 194))
    }

    @Test
    fun `secret key round-trips through hex`() {
        val key = SignatureKey.generate()
        val again = SignatureKey.fromHex(key.secretKey.toHex())
        assertEquals(key.publicKeyHex, again.publicKeyHex)
        assertEquals("2a".repeat(32), vectorKey.secretKey.toHex())
    }

    @Test
    fun `rejects secret keys outside the curve order`() {
        assertThrows<IllegalArgumentException> { SignatureKey(ByteArray(32)) }
        assertThrows<IllegalArgumentException> { SignatureKey(ByteArray(31) { 1 }) }
        assertThrows<IllegalArgumentException> { SignatureKey(ByteArray(32) { 0xff.toByte() }) }
        val n = SignatureKey.CURVE.n.toByteArray().takeLast(32).toByteArray()
        assertThrows<IllegalArgumentException> { SignatureKey(n) }
        assertThrows<IllegalArgumentException> { SignatureKey.fromHex("zz".repeat(32)) }
        assertThrows<IllegalArgumentException> { vectorKey.header(-1L) }
    }
}
