package io.github.govss.vss

// Value sealing as vss-client-ng 0.6.0's StorableBuilder does it (src/util/storable_builder.rs),
// with ChaCha20-Poly1305 from BouncyCastle and nonces from java.security.SecureRandom.

import com.google.protobuf.ByteString
import com.google.protobuf.InvalidProtocolBufferException
import vss.v1.Vss
import java.security.SecureRandom

/** CIPHER_FORMAT names the only cipher a `Storable` may use, as vss-client-ng writes it. */
const val CIPHER_FORMAT: String = "ChaCha20Poly1305"

/**
 * VerificationException is how every failed verification of data read from the server
 * surfaces: no data comes with it. [kind] says what failed, [storageKey] is the key as the
 * server stores it (obfuscated); for [Kind.VERSION], [sealedVersion] and [serverVersion]
 * say what disagreed.
 */
class VerificationException internal constructor(
    /** What failed. */
    val kind: Kind,
    /** The key as the server stores it. */
    val storageKey: String,
    /** What failed, without the kind and the key. */
    val detail: String,
    /** The version sealed in the value ([Kind.VERSION] only). */
    val sealedVersion: Long? = null,
    /** The version the server reported ([Kind.VERSION] only). */
    val serverVersion: Long? = null,
    cause: Throwable? = null,
) : Exception("verification failed ($kind) for storage key \"$storageKey\": $detail", cause) {
    /** Kind says why data failed verification. */
    enum class Kind {
        /**
         * Not a `Storable`, missing or malformed metadata, an unknown cipher, a
         * `PlaintextBlob` that does not decode, or a key that does not deobfuscate.
         */
        FORMAT,

        /**
         * The tag does not verify: the value was altered, sealed with other keys, or moved
         * from another storage key (or another user).
         */
        AUTHENTICATION,

        /**
         * The version sealed in the value disagrees with the version the server reports:
         * an older value served under a newer version (a rollback).
         */
        VERSION,
    }
}

/**
 * StorableBuilder seals values as vss-client-ng's `StorableBuilder` does: the encoded
 * `PlaintextBlob{value, version}` is encrypted with ChaCha20-Poly1305 under the data
 * encryption key, a random 12-byte nonce and the caller's associated data (the storage
 * key), into an encoded `Storable{data, encryption_metadata{cipher_format
 * "ChaCha20Poly1305", nonce, tag}}` (the 16-byte tag detached): the bytes a `KeyValue`'s
 * value holds.
 *
 * @param random draws the nonces; keep the default, the platform's CSPRNG.
 */
class StorableBuilder @JvmOverloads constructor(dataEncryptionKey: ByteArray, private val random: SecureRandom = SecureRandom()) {
    private val key: ByteArray = dataEncryptionKey.copyOf()

    init {
        require(key.size == KEY_LENGTH) { "data encryption key must be 32 bytes, got ${key.size}" }
    }

    /** Opened is a value opened by [deconstruct], with the version its writer sealed with it. */
    class Opened internal constructor(
        /** The plaintext value. */
        val value: ByteArray,
        /** The version the writer sealed with the value (-1 for an unconditional write). */
        val sealedVersion: Long,
    )

    /** Seals [value] with [version] and associated data [aad]; returns the encoded `Storable`. */
    fun build(value: ByteArray, version: Long, aad: ByteArray): ByteArray =
        buildWithNonce(value, version, aad, ByteArray(NONCE_LENGTH).also(random::nextBytes))

    /** Seals as [build] with a given nonce: for known-answer tests only (a repeated nonce breaks the cipher). */
    internal fun buildWithNonce(value: ByteArray, version: Long, aad: ByteArray, nonce: ByteArray): ByteArray {
        require(nonce.size == NONCE_LENGTH) { "nonce must be 12 bytes" }
        val blob = Vss.PlaintextBlob.newBuilder().setValue(ByteString.copyFrom(value)).setVersion(version).build().toByteArray()
        val (data, tag) = chachaSeal(key, nonce, blob, aad)
        return Vss.Storable.newBuilder()
            .setData(ByteString.copyFrom(data))
            .setEncryptionMetadata(
                Vss.EncryptionMetadata.newBuilder()
                    .setCipherFormat(CIPHER_FORMAT)
                    .setNonce(ByteString.copyFrom(nonce))
                    .setTag(ByteString.copyFrom(tag)),
            )
            .build().toByteArray()
    }

    /**
     * Opens the encoded `Storable` [stored], sealed with associated data [aad], and returns
     * its value and sealed version, or throws a [VerificationException] naming [storageKey]:
     * FORMAT for anything but a ChaCha20Poly1305 `Storable` with a 12-byte nonce and a
     * 16-byte tag around a `PlaintextBlob`, AUTHENTICATION when the tag does not verify.
     * The sealed version is not checked here (see [checkSealedVersion]).
     */
    fun deconstruct(stored: ByteArray, aad: ByteArray, storageKey: String): Opened {
        fun fail(kind: VerificationException.Kind, detail: String, cause: Throwable? = null) =
            VerificationException(kind, storageKey, detail, cause = cause)
        val storable = try {
            Vss.Storable.parseFrom(stored)
        } catch (e: InvalidProtocolBufferException) {
            throw fail(VerificationException.Kind.FORMAT, "the value is not a Storable", e)
        }
        if (!storable.hasEncryptionMetadata()) throw fail(VerificationException.Kind.FORMAT, "the Storable has no encryption metadata")
        val meta = storable.encryptionMetadata
        if (meta.cipherFormat != CIPHER_FORMAT) {
            throw fail(VerificationException.Kind.FORMAT, "unknown cipher \"${meta.cipherFormat}\", want $CIPHER_FORMAT")
        }
        if (meta.nonce.size() != NONCE_LENGTH || meta.tag.size() != TAG_LENGTH) {
            throw fail(
                VerificationException.Kind.FORMAT,
                "want a $NONCE_LENGTH-byte nonce and a $TAG_LENGTH-byte tag, got ${meta.nonce.size()} and ${meta.tag.size()}",
            )
        }
        val blob = chachaOpen(key, meta.nonce.toByteArray(), storable.data.toByteArray(), meta.tag.toByteArray(), aad)
            ?: throw fail(
                VerificationException.Kind.AUTHENTICATION,
                "the tag does not verify: the value was altered, sealed with other keys, or moved from another storage key",
            )
        val plain = try {
            Vss.PlaintextBlob.parseFrom(blob)
        } catch (e: InvalidProtocolBufferException) {
            throw fail(VerificationException.Kind.FORMAT, "the decrypted data is not a PlaintextBlob", e)
        }
        return Opened(plain.value.toByteArray(), plain.version)
    }

    override fun toString(): String = "StorableBuilder(redacted)"
}

/**
 * Throws a [VerificationException] (VERSION) unless the version sealed in a value agrees
 * with the version the server reports for it. A writer seals the version it sends: a
 * conditional write of version N (0 creates) is stored as version N+1, so the server must
 * report `sealedVersion + 1`; an unconditional write seals -1, which leaves nothing to
 * compare.
 */
fun checkSealedVersion(storageKey: String, sealedVersion: Long, serverVersion: Long) {
    if (sealedVersion != -1L && sealedVersion + 1 != serverVersion) {
        throw VerificationException(
            VerificationException.Kind.VERSION,
            storageKey,
            "the value was written as version ${sealedVersion + 1} (sealed $sealedVersion) but the server reports version " +
                "$serverVersion: an older value served as newer",
            sealedVersion = sealedVersion,
            serverVersion = serverVersion,
        )
    }
}

/**
 * Opens the value the server returned for [storageKey] ([kv]; an absent value counts as
 * empty bytes), sealed with [aad], and checks its sealed version against the server's.
 */
internal fun StorableBuilder.openVerified(storageKey: String, kv: Vss.KeyValue?, aad: ByteArray): StorableBuilder.Opened {
    val opened = deconstruct(kv?.value?.toByteArray() ?: ByteArray(0), aad, storageKey)
    checkSealedVersion(storageKey, opened.sealedVersion, kv?.version ?: 0)
    return opened
}
