package io.github.govss.vss

import org.bouncycastle.crypto.params.ECPublicKeyParameters
import org.bouncycastle.crypto.signers.ECDSASigner
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.math.BigInteger
import java.security.MessageDigest
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
