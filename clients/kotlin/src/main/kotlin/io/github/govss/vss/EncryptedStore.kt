package io.github.govss.vss

import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.deleteObjectRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.security.SecureRandom

/** EncryptedItem is a value to write: its key in clear, the value, and the version to send. */
class EncryptedItem(
    /** The key in clear; the server sees only its obfuscated form. */
    val key: String,
    /** The plaintext; the server sees only the sealed `Storable`. */
    val value: ByteArray,
    /**
     * The version to write, as `PutObjects` takes it: 0 creates the key, N updates version
     * N, -1 writes unconditionally. It is sealed with the value.
     */
    val version: Long,
)

/** DeleteItem is a key to delete in a put: its key in clear and version (-1: any). */
data class DeleteItem(val key: String, val version: Long)

/** EncryptedValue is a verified value, as [EncryptedStore.get] returns it. */
class EncryptedValue internal constructor(
    /** The key in clear. */
    val key: String,
    /** The key as the server stores it (obfuscated). */
    val storageKey: String,
    /** The decrypted value. */
    val value: ByteArray,
    /** The version the server reports. */
    val version: Long,
    /** The version the writer sealed with the value (-1: an unconditional write). */
    val sealedVersion: Long,
)

/** EncryptedKeyVersion is a key of an [EncryptedStore.list]ing: in clear, as stored, and its version. */
data class EncryptedKeyVersion(val key: String, val storageKey: String, val version: Long)

/** EncryptedListing is every key of a store in clear, and the store's global version. */
data class EncryptedListing(val keyVersions: List<EncryptedKeyVersion>, val globalVersion: Long)

/**
 * EncryptedStore reads and writes VSS stores through a client of the service ([VssClient],
 * with its credentials, retries and device id) so that the server sees neither key names
 * nor values, the way vss-client-ng applications store them: each key is obfuscated with
 * [KeyObfuscator]; each value is sealed with [StorableBuilder], with the storage key (the
 * obfuscated key, exactly as stored) as associated data and the version the write is sent
 * with as the sealed version. [withLease] makes its writes go under a [VssLease].
 *
 * Reads verify all they can and throw a [VerificationException] otherwise, never returning
 * unverified data: the tag (a value altered, sealed with other keys, or moved from another
 * storage key fails with AUTHENTICATION) and, for a value written conditionally, that the
 * server reports the version that was written (VERSION otherwise: an older value served as
 * newer). What a reader cannot tell: an unconditional (-1) value rolled back to an older
 * one written the same way; a key rolled back together with its version; a key deleted or
 * left out of a listing; a value moved to the same key of another store id sealed with the
 * same [Keys] (the associated data binds the storage key only). See docs/encryption.md.
 *
 * Sources followed: vss-client-ng 0.6.0, `src/util/storable_builder.rs` and
 * `src/util/key_obfuscator.rs`.
 *
 * @param random draws the nonces; keep the default, the platform's CSPRNG.
 */
class EncryptedStore private constructor(
    /** The client every call goes through. */
    val client: VssServiceClientInterface,
    /** Hides the key names. */
    val obfuscator: KeyObfuscator,
    /** Seals and opens the values. */
    val builder: StorableBuilder,
    private val lease: VssLease?,
) {
    @JvmOverloads
    constructor(client: VssServiceClientInterface, keys: Keys, random: SecureRandom = SecureRandom()) :
        this(client, KeyObfuscator(keys.omk), StorableBuilder(keys.dek, random), null)

    /**
     * Returns a store like this one whose writes ([put], [delete]) go through [lease], fenced
     * by its token: they fail with [LeaseLostException] once the lease is lost. Reads still
     * go through [client].
     */
    fun withLease(lease: VssLease): EncryptedStore = EncryptedStore(client, obfuscator, builder, lease)

    /** Returns [key] as the server stores it: obfuscated. */
    fun storageKey(key: String): String = obfuscator.obfuscate(key)

    /**
     * Reads [key] of [storeId] and returns its value, verified.
     *
     * @throws VerificationException when the stored value does not verify.
     * @throws com.connectrpc.ConnectException when the call fails, `NOT_FOUND` for a key
     *   that does not exist.
     */
    suspend fun get(storeId: String, key: String): EncryptedValue {
        val storageKey = storageKey(key)
        val response = client.getObject(getObjectRequest { this.storeId = storeId; this.key = storageKey }).getOrThrow()
        val kv = response.valueOrNull()
        val opened = builder.openVerified(storageKey, kv, storageKey.toByteArray())
        return EncryptedValue(key, storageKey, opened.value, kv?.version ?: 0, opened.sealedVersion)
    }

    /**
     * Writes [items] and deletes [deleteItems] of [storeId] in one transaction, as
     * `PutObjects` does: each value sealed with the version it is sent with; a
     * [globalVersion], when given, is checked and bumped.
     *
     * @throws com.connectrpc.ConnectException when the write fails (`ABORTED` for a version
     *   conflict: nothing was written).
     */
    @JvmOverloads
    suspend fun put(storeId: String, items: List<EncryptedItem>, deleteItems: List<DeleteItem> = emptyList(), globalVersion: Long? = null) {
        val request = putObjectRequest {
            this.storeId = storeId
            globalVersion?.let { this.globalVersion = it }
            for (item in items) {
                val storageKey = storageKey(item.key)
                transactionItems += keyValue {
                    key = storageKey
                    version = item.version
                    value = ByteString.copyFrom(builder.build(item.value, item.version, storageKey.toByteArray()))
                }
            }
            for (item in deleteItems) {
                this.deleteItems += keyValue { key = storageKey(item.key); version = item.version }
            }
        }
        (lease?.putObjects(request) ?: client.putObjects(request)).getOrThrow()
    }

    /** Writes one value: `put(storeId, listOf(EncryptedItem(key, value, version)))`. */
    suspend fun put(storeId: String, key: String, value: ByteArray, version: Long) =
        put(storeId, listOf(EncryptedItem(key, value, version)))

    /**
     * Deletes [key] of [storeId] if its version is [version] (-1: any), as `DeleteObject`
     * does: a missing key, or one of another version, is not an error.
     */
    suspend fun delete(storeId: String, key: String, version: Long) {
        val request = deleteObjectRequest {
            this.storeId = storeId
            keyValue = keyValue { this.key = storageKey(key); this.version = version }
        }
        (lease?.deleteObject(request) ?: client.deleteObject(request)).getOrThrow()
    }

    /**
     * Returns every key of [storeId] in clear with its version (all pages, in the server's
     * order: newest created first) and the store's global version.
     *
     * @throws VerificationException (FORMAT) when a key does not deobfuscate: the store holds
     *   a key these [Keys] did not write.
     */
    suspend fun list(storeId: String): EncryptedListing {
        val all = listAllPages(client, listKeyVersionsRequest { this.storeId = storeId })
        val keys = all.keyVersionsList.map { kv -> EncryptedKeyVersion(obfuscator.deobfuscate(kv.key), kv.key, kv.version) }
        return EncryptedListing(keys, all.globalVersion)
    }

    override fun toString(): String = "EncryptedStore(client=$client)"
}

/** The value of a response that has one, else null. */
internal fun Vss.GetObjectResponse.valueOrNull(): Vss.KeyValue? = if (hasValue()) value else null
