package io.github.govss.vss

import org.bouncycastle.asn1.x9.X9ECParameters
import org.bouncycastle.crypto.digests.SHA256Digest
import org.bouncycastle.crypto.ec.CustomNamedCurves
import org.bouncycastle.crypto.params.ECDomainParameters
import org.bouncycastle.crypto.params.ECPrivateKeyParameters
import org.bouncycastle.crypto.signers.ECDSASigner
import org.bouncycastle.crypto.signers.HMacDSAKCalculator
import org.bouncycastle.crypto.signers.StandardDSAEncoding
import org.bouncycastle.math.ec.FixedPointCombMultiplier
import java.math.BigInteger
import java.security.MessageDigest
import java.security.SecureRandom
import java.time.Instant

/**
 * SignatureKey is a secp256k1 secret key that signs requests with the VSS signature scheme,
 * the default authentication of VSS servers.
 *
 * Each request carries an `Authorization` header made of the hex of the 33-byte compressed
 * public key, the hex of a 64-byte compact ECDSA signature (r || s) and the signing time in
 * decimal UNIX seconds. The signature covers SHA-256 over [SIGNING_CONSTANT], the public key
 * bytes and the time string. It is deterministic (RFC 6979) and low-S, as libsecp256k1
 * signs, so the header is byte for byte what the reference client sends. The server takes
 * the public key as the user's identity: keep the secret key to keep the data.
 *
 * @param secretKey the 32-byte big-endian secret key, in [1, n-1] where n is the curve order.
 */
class SignatureKey(secretKey: ByteArray) {
    private val d: BigInteger

    /** The 33-byte compressed public key. */
    val publicKey: ByteArray
        get() = publicKeyBytes.copyOf()

    /** The public key in lowercase hex: the identity the server stores this key's data under. */
    val publicKeyHex: String

    private val publicKeyBytes: ByteArray

    init {
        require(secretKey.size == 32) { "secp256k1 secret key must be 32 bytes, got ${secretKey.size}" }
        d = BigInteger(1, secretKey)
        require(d.signum() > 0 && d < CURVE.n) { "secp256k1 secret key must be in [1, n-1]" }
        publicKeyBytes = FixedPointCombMultiplier().multiply(CURVE.g, d).normalize().getEncoded(true)
        publicKeyHex = publicKeyBytes.toHex()
    }

    /** Returns the `Authorization` header value for a request signed at [time]. */
    fun header(time: Instant): String = header(time.epochSecond)

    /** Returns the `Authorization` header value for a request signed at [unixSeconds]. */
    fun header(unixSeconds: Long): String {
        require(unixSeconds >= 0) { "signing time must not be before 1970" }
        val timeString = unixSeconds.toString()
        val digest = MessageDigest.getInstance("SHA-256").run {
            update(SIGNING_CONSTANT.toByteArray(Charsets.US_ASCII))
            update(publicKeyBytes)
            update(timeString.toByteArray(Charsets.US_ASCII))
            digest()
        }
        val (r, s) = sign(digest)
        return publicKeyHex + r.toFixed32().toHex() + s.toFixed32().toHex() + timeString
    }

    /**
     * Returns the DER encoding of the signature of the 32-byte [digest], as LNURL-auth sends
     * it: strict DER (minimal integers), low S, deterministic.
     */
    internal fun signDer(digest: ByteArray): ByteArray {
        val (r, s) = sign(digest)
        return StandardDSAEncoding.INSTANCE.encode(CURVE.n, r, s)
    }

    /**
     * Signs the 32-byte [digest] as libsecp256k1 does: ECDSA with the nonce of RFC 6979
     * (HMAC-SHA256), and the low S of the pair (s, n-s). Returns r and s.
     */
    private fun sign(digest: ByteArray): Pair<BigInteger, BigInteger> {
        require(digest.size == 32) { "the digest to sign must be 32 bytes, got ${digest.size}" }
        val signer = ECDSASigner(HMacDSAKCalculator(SHA256Digest()))
        signer.init(true, ECPrivateKeyParameters(d, CURVE))
        val (r, s) = signer.generateSignature(digest)
        return r to if (s > HALF_N) CURVE.n - s else s
    }

    /** The 32-byte secret key, for storing it. */
    val secretKey: ByteArray
        get() = d.toFixed32()

    override fun toString(): String = "SignatureKey($publicKeyHex)"

    companion object {
        /**
         * SIGNING_CONSTANT is the 64-byte ASCII prefix of every signed message: the words,
         * then dots up to 64 bytes.
         */
        const val SIGNING_CONSTANT = "VSS Signature Authorizer Signing Salt Constant.................."

        private val PARAMS: X9ECParameters = CustomNamedCurves.getByName("secp256k1")
        internal val CURVE = ECDomainParameters(PARAMS.curve, PARAMS.g, PARAMS.n, PARAMS.h)
        private val HALF_N: BigInteger = CURVE.n.shiftRight(1)
        private val HEX_KEY = Regex("[0-9a-fA-F]{64}")

        /** Returns a new random key. Store its [SignatureKey.secretKey] to reach the same data later. */
        @JvmStatic
        @JvmOverloads
        fun generate(random: SecureRandom = SecureRandom()): SignatureKey {
            while (true) {
                val bytes = ByteArray(32).also(random::nextBytes)
                val candidate = BigInteger(1, bytes)
                if (candidate.signum() > 0 && candidate < CURVE.n) return SignatureKey(bytes)
            }
        }

        /** Returns the key whose 32-byte secret is given as 64 hex characters. */
        @JvmStatic
        fun fromHex(secretKeyHex: String): SignatureKey {
            require(HEX_KEY.matches(secretKeyHex)) { "secp256k1 secret key must be 64 hex characters" }
            return SignatureKey(ByteArray(32) { i -> secretKeyHex.substring(2 * i, 2 * i + 2).toInt(16).toByte() })
        }
    }
}

internal fun BigInteger.toFixed32(): ByteArray {
    val raw = toByteArray() // big-endian two's complement, possibly with a leading zero byte
    return when {
        raw.size == 32 -> raw
        raw.size > 32 -> raw.copyOfRange(raw.size - 32, raw.size)
        else -> ByteArray(32 - raw.size) + raw
    }
}

private const val HEX = "0123456789abcdef"

internal fun ByteArray.toHex(): String {
    val out = StringBuilder(size * 2)
    for (b in this) {
        val v = b.toInt() and 0xff
        out.append(HEX[v ushr 4]).append(HEX[v and 0x0f])
    }
    return out.toString()
}
