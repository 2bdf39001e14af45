@file:JvmName("EncryptedKeys")

package io.github.govss.vss

// Client-side encryption, byte for byte as the Rust client wallets use today: the key
// derivation of LDK Node's VSS store (src/io/vss_store.rs at commit 77f9564e:
// VSS_HARDENED_CHILD_INDEX, derive_data_encryption_and_obfuscation_keys) and
// vss-client-ng 0.6.0's KeyObfuscator (src/util/key_obfuscator.rs). The primitives are
// BouncyCastle's (bcprov-jdk18on): ChaCha20-Poly1305 (RFC 8439), HMAC-SHA256 and
// HMAC-SHA512, and the secp256k1 order for BIP32.

import org.bouncycastle.crypto.InvalidCipherTextException
import org.bouncycastle.crypto.digests.SHA256Digest
import org.bouncycastle.crypto.digests.SHA512Digest
import org.bouncycastle.crypto.macs.HMac
import org.bouncycastle.crypto.modes.ChaCha20Poly1305
import org.bouncycastle.crypto.params.AEADParameters
import org.bouncycastle.crypto.params.KeyParameter
import java.math.BigInteger
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.ByteBuffer
import java.util.Base64

internal const val KEY_LENGTH = 32
internal const val NONCE_LENGTH = 12
internal const val TAG_LENGTH = 16

/**
 * VSS_HARDENED_CHILD_INDEX is the hardened BIP32 child of a wallet's master key whose
 * private key LDK Node uses as the "VSS seed": m/877'.
 */
const val VSS_HARDENED_CHILD_INDEX: Int = 877

/**
 * Keys are the two secrets of client-side encryption, 32 bytes each: [dataEncryptionKey]
 * seals values (ChaCha20-Poly1305, as vss-client-ng's `StorableBuilder`) and
 * [obfuscationMasterKey] hides key names (`KeyObfuscator`). Derive them from a wallet's
 * seed with [keysFromWalletSeed], as LDK Node does, or from a VSS seed with
 * [keysFromVssSeed]. [toString] never shows the bytes.
 */
class Keys(dataEncryptionKey: ByteArray, obfuscationMasterKey: ByteArray) {
    internal val dek: ByteArray = dataEncryptionKey.copyOf()
    internal val omk: ByteArray = obfuscationMasterKey.copyOf()

    init {
        require(dek.size == KEY_LENGTH) { "data encryption key must be 32 bytes, got ${dek.size}" }
        require(omk.size == KEY_LENGTH) { "obfuscation master key must be 32 bytes, got ${omk.size}" }
    }

    /** The 32-byte key that seals and opens values (a copy). */
    val dataEncryptionKey: ByteArray get() = dek.copyOf()

    /** The 32-byte key from which [KeyObfuscator] derives its keys (a copy). */
    val obfuscationMasterKey: ByteArray get() = omk.copyOf()

    override fun toString(): String = "Keys(redacted)"
}

/**
 * Returns the keys LDK Node derives from a 32-byte VSS seed
 * (`derive_data_encryption_and_obfuscation_keys`): with hkdf(ikm, salt) =
 * HMAC-SHA256(key = salt, message = ikm), prk = hkdf(vssSeed, "pseudo_random_key"),
 * dataEncryptionKey = hkdf(prk, "data_encryption_key") and obfuscationMasterKey =
 * hkdf(prk, dataEncryptionKey ‖ "obfuscation_key").
 */
fun keysFromVssSeed(vssSeed: ByteArray): Keys {
    require(vssSeed.size == KEY_LENGTH) { "VSS seed must be 32 bytes, got ${vssSeed.size}" }
    val prk = hkdf(vssSeed, "pseudo_random_key".toByteArray())
    val dek = hkdf(prk, "data_encryption_key".toByteArray())
    val omk = hkdf(prk, dek + "obfuscation_key".toByteArray())
    return Keys(dek, omk)
}

/**
 * Returns the keys LDK Node derives from a wallet's seed (16 to 64 bytes; LDK Node's is
 * 64): `keysFromVssSeed(vssSeedFromWalletSeed(walletSeed))`.
 */
fun keysFromWalletSeed(walletSeed: ByteArray): Keys = keysFromVssSeed(vssSeedFromWalletSeed(walletSeed))

/**
 * VSS_SIGNING_CHILD_INDEX is the hardened child of m/877' whose private key LDK Node signs
 * its VSS requests with under the signature scheme: m/877'/139'.
 */
const val VSS_SIGNING_CHILD_INDEX: Int = 139

/**
 * Returns the VSS seed LDK Node derives from a wallet's seed (16 to 64 bytes, as BIP32
 * allows): the 32-byte private key of the hardened child m/877' of the seed's BIP32 master
 * key. The network does not matter: it changes only the extended key's version bytes.
 */
fun vssSeedFromWalletSeed(walletSeed: ByteArray): ByteArray = hardenedKey(walletSeed, VSS_HARDENED_CHILD_INDEX)

/**
 * Returns the key LDK Node signs its VSS requests with when it uses the signature scheme
 * (vss-client-ng's `SigsAuthProvider`, built by LDK Node's
 * `VssStoreBuilder::build_with_sigs_auth`): the private key of m/877'/139' of the wallet's
 * seed. `Credentials.signature(signatureKeyFromWalletSeed(seed))` makes a client the same
 * user as the wallet.
 */
fun signatureKeyFromWalletSeed(walletSeed: ByteArray): SignatureKey =
    SignatureKey(hardenedKey(walletSeed, VSS_HARDENED_CHILD_INDEX, VSS_SIGNING_CHILD_INDEX))

/**
 * Returns the 32-byte private key at the hardened BIP32 path m/path[0]'/path[1]'/… of
 * [seed] (16 to 64 bytes).
 *
 * BIP32 from BouncyCastle's primitives rather than a Bitcoin library: the JVM's BIP32
 * implementations come inside whole Bitcoin stacks (bitcoinj with Guava, bitcoin-kmp with
 * native secp256k1 bindings), while hardened steps need no elliptic-curve arithmetic at
 * all: master (k, c) = HMAC-SHA512(key = "Bitcoin seed", seed); each step
 * I = HMAC-SHA512(key = c, 0x00 ‖ ser256(k) ‖ ser32(0x80000000 + i)), k = parse256(I[0..32])
 * + k mod n (n the secp256k1 order), c = I[32..64]. The tests check it against the bitcoin
 * crate's `Xpriv` (the shared vectors), BIP32's test vector 1 and @scure/bip32.
 */
internal fun hardenedKey(seed: ByteArray, vararg path: Int): ByteArray {
    require(seed.size in 16..64) { "wallet seed must be 16 to 64 bytes, got ${seed.size}" }
    val n = SignatureKey.CURVE.n
    val master = hmacSha512("Bitcoin seed".toByteArray(), seed)
    var k = BigInteger(1, master.copyOfRange(0, 32))
    var chainCode = master.copyOfRange(32, 64)
    check(k.signum() > 0 && k < n) { "BIP32: this seed gives no valid master key" }
    for (i in path) {
        require(i >= 0) { "BIP32: a hardened index is 0 to 2^31-1, got $i" }
        val index = ByteBuffer.allocate(4).putInt((0x80000000L + i).toInt()).array()
        val child = hmacSha512(chainCode, byteArrayOf(0) + k.toFixed32() + index)
        val il = BigInteger(1, child.copyOfRange(0, 32))
        k = il.add(k).mod(n)
        check(il < n && k.signum() != 0) { "BIP32: this seed gives no valid key at index $i'" }
        chainCode = child.copyOfRange(32, 64)
    }
    return k.toFixed32()
}

/** The "hkdf" of LDK Node and vss-client-ng: HMAC-SHA256 keyed with [salt] over [ikm]. */
internal fun hkdf(ikm: ByteArray, salt: ByteArray): ByteArray {
    val mac = HMac(SHA256Digest())
    mac.init(KeyParameter(salt))
    mac.update(ikm, 0, ikm.size)
    return ByteArray(mac.macSize).also { mac.doFinal(it, 0) }
}

private fun hmacSha512(key: ByteArray, message: ByteArray): ByteArray {
    val mac = HMac(SHA512Digest())
    mac.init(KeyParameter(key))
    mac.update(message, 0, message.size)
    return ByteArray(mac.macSize).also { mac.doFinal(it, 0) }
}

/** Encrypts [plaintext] with ChaCha20-Poly1305 (RFC 8439) and returns the ciphertext and the tag apart. */
internal fun chachaSeal(key: ByteArray, nonce: ByteArray, plaintext: ByteArray, aad: ByteArray?): Pair<ByteArray, ByteArray> {
    val cipher = ChaCha20Poly1305()
    cipher.init(true, AEADParameters(KeyParameter(key), TAG_LENGTH * 8, nonce, aad))
    val out = ByteArray(cipher.getOutputSize(plaintext.size))
    val len = cipher.processBytes(plaintext, 0, plaintext.size, out, 0)
    cipher.doFinal(out, len)
    return out.copyOfRange(0, plaintext.size) to out.copyOfRange(plaintext.size, out.size)
}

/** Decrypts [ciphertext] whose [tag] travels apart, or returns null when the tag does not verify. */
internal fun chachaOpen(key: ByteArray, nonce: ByteArray, ciphertext: ByteArray, tag: ByteArray, aad: ByteArray?): ByteArray? {
    val cipher = ChaCha20Poly1305()
    cipher.init(false, AEADParameters(KeyParameter(key), TAG_LENGTH * 8, nonce, aad))
    val input = ciphertext + tag
    val out = ByteArray(cipher.getOutputSize(input.size))
    return try {
        val len = cipher.processBytes(input, 0, input.size, out, 0)
        cipher.doFinal(out, len)
        out
    } catch (_: InvalidCipherTextException) {
        null
    }
}

/**
 * KeyObfuscator hides key names as vss-client-ng 0.6.0's `KeyObfuscator` does: from the
 * master key it derives an obfuscation key and a hashing key; a name is encrypted with
 * ChaCha20-Poly1305 under a synthetic nonce (4 zero bytes, then 8 bytes of an HMAC-SHA256
 * of the name under the hashing key), that nonce is itself encrypted under a synthetic
 * nonce of the ciphertext, and `ciphertext ‖ tag ‖ wrapped nonce ‖ tag` is written in
 * base64 (standard alphabet, no padding). The same name always gives the same obfuscated
 * key, so a key can be read without listing the store, and a string nobody obfuscated
 * with these keys does not deobfuscate.
 */
class KeyObfuscator(obfuscationMasterKey: ByteArray) {
    private val obfuscationKey: ByteArray
    private val hashingKey: ByteArray

    init {
        require(obfuscationMasterKey.size == KEY_LENGTH) { "obfuscation master key must be 32 bytes, got ${obfuscationMasterKey.size}" }
        val prk = hkdf(obfuscationMasterKey, "pseudo_random_key".toByteArray())
        obfuscationKey = hkdf(prk, "obfuscation_key".toByteArray())
        hashingKey = hkdf(prk, obfuscationKey + "hashing_key".toByteArray())
    }

    /** The crate's synthetic nonce: 4 zero bytes, then the first 8 bytes of hkdf(hashingKey, material). */
    private fun syntheticNonce(material: ByteArray): ByteArray =
        ByteArray(NONCE_LENGTH).also { hkdf(hashingKey, material).copyInto(it, 4, 0, 8) }

    /** Returns the obfuscated form of [key]. */
    fun obfuscate(key: String): String {
        val plain = key.toByteArray(Charsets.UTF_8)
        val nonce = syntheticNonce(plain)
        val (ciphertext, tag) = chachaSeal(obfuscationKey, nonce, plain, null)
        val (wrappedNonce, nonceTag) = chachaSeal(obfuscationKey, syntheticNonce(ciphertext), nonce, null)
        return B64_ENCODER.encodeToString(ciphertext + tag + wrappedNonce + nonceTag)
    }

    /**
     * Returns the key that [obfuscatedKey] hides, or throws a [VerificationException]
     * (FORMAT) when these keys did not make it: not canonical base64 (standard alphabet,
     * no padding, unused bits zero, as the crate decodes), too short, a tag that does not
     * verify, or not UTF-8.
     */
    fun deobfuscate(obfuscatedKey: String): String {
        fun fail(detail: String) = VerificationException(VerificationException.Kind.FORMAT, obfuscatedKey, "cannot deobfuscate the key: $detail")
        val bytes = decodeBase64NoPad(obfuscatedKey) ?: throw fail("not base64 (standard alphabet, no padding)")
        val trailer = TAG_LENGTH + NONCE_LENGTH + TAG_LENGTH
        if (bytes.size < trailer) throw fail("want at least $trailer bytes, got ${bytes.size}")
        val end = bytes.size
        val ciphertext = bytes.copyOfRange(0, end - trailer)
        val tag = bytes.copyOfRange(end - trailer, end - NONCE_LENGTH - TAG_LENGTH)
        val wrappedNonce = bytes.copyOfRange(end - NONCE_LENGTH - TAG_LENGTH, end - TAG_LENGTH)
        val nonceTag = bytes.copyOfRange(end - TAG_LENGTH, end)
        val nonce = chachaOpen(obfuscationKey, syntheticNonce(ciphertext), wrappedNonce, nonceTag, null)
            ?: throw fail("the wrapped nonce does not verify (another obfuscation key, or altered)")
        val plain = chachaOpen(obfuscationKey, nonce, ciphertext, tag, null)
            ?: throw fail("the key does not verify (another obfuscation key, or altered)")
        return try {
            Charsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(plain)).toString()
        } catch (_: CharacterCodingException) {
            throw fail("not UTF-8")
        }
    }

    override fun toString(): String = "KeyObfuscator(redacted)"

    private companion object {
        val B64_ENCODER: Base64.Encoder = Base64.getEncoder().withoutPadding()

        /**
         * Decodes base64 as the crate's BASE64_STANDARD_NO_PAD engine does: the standard
         * alphabet, no padding, and canonical (the unused bits of the last character zero).
         * Java's decoder accepts padding and non-zero unused bits, so the result must
         * encode back to the same text.
         */
        fun decodeBase64NoPad(text: String): ByteArray? {
            if (text.contains('=')) return null
            val bytes = try {
                Base64.getDecoder().decode(text)
            } catch (_: IllegalArgumentException) {
                return null
            }
            return if (B64_ENCODER.encodeToString(bytes) == text) bytes else null
        }
    }
}
