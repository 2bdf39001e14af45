package io.github.govss.vss

// LDK Node's layout of a VSS store, both schema generations, as its VSS store names keys:
// src/io/vss_store.rs of LDK Node at commit 77f9564e (VssSchemaVersion, build_obfuscated_key,
// build_obfuscated_prefix, extract_namespaces, list_all_keys_internal,
// determine_and_write_schema_version, check_namespace_key_validity).

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import vss.v1.VssServiceClientInterface
import vss.v1.deleteObjectRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest

/** LdkKey is a key of an LDK Node store, in clear, with the server's version. */
data class LdkKey(
    val primaryNamespace: String,
    val secondaryNamespace: String,
    val key: String,
    /** The version the server reports (LDK Node's unconditional writes leave 1). */
    val version: Long,
    /** The key as the server stores it. */
    val storageKey: String,
)

/** LdkNamespace is one namespace pair of an LDK Node store and its keys. */
data class LdkNamespace(val primaryNamespace: String, val secondaryNamespace: String, val keys: List<LdkKey>)

/** LdkValue is a verified value of an LDK Node store, as [LdkStore.get] returns it. */
class LdkValue internal constructor(
    /** The decrypted value. */
    val value: ByteArray,
    /** The version the server reports. */
    val version: Long,
    /** The version sealed with the value (-1 for LDK Node's writes). */
    val sealedVersion: Long,
    /** The key as the server stores it. */
    val storageKey: String,
)

/**
 * LdkStore reads and writes a VSS store laid out as LDK Node's VSS store lays it out, with
 * the [Keys] LDK Node derives from the wallet's seed ([keysFromWalletSeed]): keys in a
 * primary and a secondary namespace, either schema generation ([Schema]), values sealed by
 * [StorableBuilder]. [open] finds the schema as LDK Node does. Every read is verified
 * ([VerificationException] otherwise); [Schema] says what each generation lets a reader
 * verify.
 */
class LdkStore private constructor(
    private val store: EncryptedStore,
    /** The store LDK Node writes to. */
    val storeId: String,
    /** The store's layout generation. */
    val schema: Schema,
    /** How [open] found [schema]. */
    val schemaSource: SchemaSource,
) {
    /**
     * Schema names the generation of LDK Node's layout a store uses.
     *
     * In both, LDK Node writes unconditionally (version -1, sealed -1): no sealed version
     * lets a reader detect a value rolled back to an older one.
     */
    enum class Schema {
        /**
         * The first: a key is stored as `obfuscate(key)` under empty namespaces, else as
         * `primary#secondary#obfuscate(key)` with the namespaces in clear, and values are
         * sealed with empty associated data. A reader can tell a value is genuine, but not
         * that it is stored under the key it was written for: the server may swap values
         * between keys (and namespaces) unnoticed, and sees the namespaces.
         */
        V0,

        /**
         * The second: keys are `obfuscate(primary#secondary)#obfuscate(key)` and the
         * associated data is that whole storage key, so a value moved to another key or
         * namespace fails verification (AUTHENTICATION).
         */
        V1,
    }

    /** SchemaSource says how [open] found the schema. */
    enum class SchemaSource {
        /** The `vss_schema_version` key of the store. */
        STORED,

        /** No such key, but keys under `bdk_wallet#`: a V0 store (LDK Node's own rule). */
        BDK_WALLET,

        /** Neither: a new store, V1, whose schema key was written unless opened read-only. */
        NEW,

        /** The caller named the schema. */
        GIVEN,
    }

    /** Returns [key] in the namespaces as LDK Node stores it (`build_obfuscated_key`). */
    fun storageKey(primaryNamespace: String, secondaryNamespace: String, key: String): String =
        prefix(primaryNamespace, secondaryNamespace) + store.obfuscator.obfuscate(key)

    /** What precedes the obfuscated key in the storage keys of a namespace pair. */
    internal fun prefix(primaryNamespace: String, secondaryNamespace: String): String = when (schema) {
        Schema.V1 -> store.obfuscator.obfuscate("$primaryNamespace#$secondaryNamespace") + "#"
        Schema.V0 -> if (primaryNamespace.isEmpty()) "" else "$primaryNamespace#$secondaryNamespace#"
    }

    /** The associated data of a storage key: the key itself in V1, nothing in V0. */
    internal fun aad(storageKey: String): ByteArray = if (schema == Schema.V1) storageKey.toByteArray() else ByteArray(0)

    /**
     * Returns the namespaces and key that [storageKey] names (with version 0), or throws a
     * [VerificationException] (FORMAT) when it is not a key of this layout or does not
     * deobfuscate.
     */
    fun parseStorageKey(storageKey: String): LdkKey {
        fun fail(detail: String, cause: Throwable? = null) =
            VerificationException(VerificationException.Kind.FORMAT, storageKey, "not an LDK $schema storage key: $detail", cause = cause)
        fun deobfuscate(part: String): String = try {
            store.obfuscator.deobfuscate(part)
        } catch (e: VerificationException) {
            throw fail(e.detail, e)
        }
        if (schema == Schema.V1) {
            val hash = storageKey.indexOf('#')
            if (hash < 0) throw fail("no # between namespace and key")
            val namespace = deobfuscate(storageKey.substring(0, hash))
            val split = namespace.indexOf('#')
            if (split < 0) throw fail("the namespace has no # between primary and secondary")
            return LdkKey(namespace.substring(0, split), namespace.substring(split + 1), deobfuscate(storageKey.substring(hash + 1)), 0, storageKey)
        }
        val parts = storageKey.split('#')
        return when (parts.size) {
            1 -> LdkKey("", "", deobfuscate(storageKey), 0, storageKey)
            3 -> LdkKey(parts[0], parts[1], deobfuscate(parts[2]), 0, storageKey)
            else -> throw fail("want primary#secondary#key or a key alone")
        }
    }

    /**
     * Returns the value of [key] in the namespaces, verified.
     *
     * @throws VerificationException when the stored value does not verify.
     * @throws com.connectrpc.ConnectException when the call fails, `NOT_FOUND` for a key
     *   that does not exist.
     */
    suspend fun read(primaryNamespace: String, secondaryNamespace: String, key: String): ByteArray =
        get(primaryNamespace, secondaryNamespace, key).value

    /** Reads as [read] does, and returns the versions too: the server's and the sealed one. */
    suspend fun get(primaryNamespace: String, secondaryNamespace: String, key: String): LdkValue {
        checkNamespaces(primaryNamespace, secondaryNamespace, key)
        val storageKey = storageKey(primaryNamespace, secondaryNamespace, key)
        val kv = store.client.getObject(getObjectRequest { storeId = this@LdkStore.storeId; this.key = storageKey }).getOrThrow().valueOrNull()
        val opened = store.builder.openVerified(storageKey, kv, aad(storageKey))
        return LdkValue(opened.value, kv?.version ?: 0, opened.sealedVersion, storageKey)
    }

    /** Stores [value] under [key] in the namespaces, unconditionally (version -1), as LDK Node writes. */
    suspend fun write(primaryNamespace: String, secondaryNamespace: String, key: String, value: ByteArray) {
        checkNamespaces(primaryNamespace, secondaryNamespace, key)
        val storageKey = storageKey(primaryNamespace, secondaryNamespace, key)
        val sealed = store.builder.build(value, -1, aad(storageKey))
        store.client.putObjects(
            putObjectRequest {
                storeId = this@LdkStore.storeId
                transactionItems += keyValue { this.key = storageKey; version = -1; this.value = ByteString.copyFrom(sealed) }
            },
        ).getOrThrow()
    }

    /** Deletes [key] in the namespaces, unconditionally (version -1), as LDK Node does; a missing key is no error. */
    suspend fun remove(primaryNamespace: String, secondaryNamespace: String, key: String) {
        checkNamespaces(primaryNamespace, secondaryNamespace, key)
        val storageKey = storageKey(primaryNamespace, secondaryNamespace, key)
        store.client.deleteObject(
            deleteObjectRequest {
                storeId = this@LdkStore.storeId
                keyValue = keyValue { this.key = storageKey; version = -1 }
            },
        ).getOrThrow()
    }

    /**
     * Returns the keys, in clear, of exactly these namespaces (newest created first).
     * Unlike LDK Node's listing, which matches a prefix, it never returns keys of another
     * secondary namespace that starts the same way (V0: `ns#sub` and `ns#sub2`), and it
     * leaves out the `vss_schema_version` key.
     *
     * @throws VerificationException (FORMAT) when a key does not deobfuscate.
     */
    suspend fun listKeys(primaryNamespace: String, secondaryNamespace: String): List<String> {
        checkNamespaces(primaryNamespace, secondaryNamespace, null)
        val prefix = prefix(primaryNamespace, secondaryNamespace)
        val all = listAllPages(store.client, listKeyVersionsRequest { storeId = this@LdkStore.storeId; keyPrefix = prefix })
        return all.keyVersionsList.mapNotNull { kv ->
            val rest = kv.key.substring(prefix.length)
            // V0: a key of other namespaces (under the empty prefix), or of a longer secondary namespace.
            if (rest.contains('#')) return@mapNotNull null
            val key = try {
                store.obfuscator.deobfuscate(rest)
            } catch (e: VerificationException) {
                throw VerificationException(VerificationException.Kind.FORMAT, kv.key, e.detail, cause = e)
            }
            key.takeUnless { primaryNamespace.isEmpty() && it == SCHEMA_VERSION_KEY }
        }
    }

    /**
     * Returns every key of the store with its namespaces in clear (LDK Node's
     * `list_all_keys`), newest created first, without the `vss_schema_version` key.
     *
     * @throws VerificationException (FORMAT) when a storage key is not of this layout or
     *   does not deobfuscate.
     */
    suspend fun listAll(): List<LdkKey> =
        listAllPages(store.client, listKeyVersionsRequest { storeId = this@LdkStore.storeId }).keyVersionsList.mapNotNull { kv ->
            val parsed = parseStorageKey(kv.key)
            if (parsed.primaryNamespace.isEmpty() && parsed.secondaryNamespace.isEmpty() && parsed.key == SCHEMA_VERSION_KEY) {
                null
            } else {
                parsed.copy(version = kv.version)
            }
        }

    /**
     * Returns the store's namespace pairs, each with its keys in clear ([listAll] grouped),
     * sorted by primary, then secondary namespace.
     */
    suspend fun listNamespaces(): List<LdkNamespace> =
        listAll().groupBy { it.primaryNamespace to it.secondaryNamespace }
            .map { (ns, keys) -> LdkNamespace(ns.first, ns.second, keys) }
            .sortedWith(compareBy({ it.primaryNamespace }, { it.secondaryNamespace }))

    override fun toString(): String = "LdkStore(store=$storeId, schema=$schema, source=$schemaSource)"

    companion object {
        /** The key, under empty namespaces, that records a store's schema (LDK Node's `VSS_SCHEMA_VERSION_KEY`). */
        const val SCHEMA_VERSION_KEY: String = "vss_schema_version"

        /** What V0 keys of LDK Node's BDK wallet start with; LDK Node takes them as the sign of a V0 store. */
        const val V0_WALLET_PREFIX: String = "bdk_wallet#"

        private val NAMESPACE = Regex("[A-Za-z0-9_-]{0,120}")

        /**
         * Opens the LDK Node store [storeId] read and written through [store] (which holds
         * the client and the keys), and finds its schema as LDK Node does
         * (`determine_and_write_schema_version`): the `vss_schema_version` key under empty
         * namespaces, in the V1 layout, if present; else V0 if keys start with
         * `bdk_wallet#`; else V1, which is then recorded (unless [readOnly]) as LDK Node
         * records it: the two bytes `01 00`, version -1, the storage key as associated data.
         *
         * @param schema skips the detection and uses this generation (nothing is read or written).
         * @param readOnly detects without writing: a new store is taken as V1 but not recorded.
         * @throws VerificationException when the stored schema version does not verify or is
         *   neither V0 nor V1.
         */
        @JvmStatic
        suspend fun open(store: EncryptedStore, storeId: String, schema: Schema? = null, readOnly: Boolean = false): LdkStore {
            if (schema != null) return LdkStore(store, storeId, schema, SchemaSource.GIVEN)
            val schemaKey = LdkStore(store, storeId, Schema.V1, SchemaSource.STORED).storageKey("", "", SCHEMA_VERSION_KEY)
            val found = store.client.getObject(getObjectRequest { this.storeId = storeId; key = schemaKey })
            try {
                val kv = found.getOrThrow().valueOrNull()
                val opened = store.builder.openVerified(schemaKey, kv, schemaKey.toByteArray())
                return LdkStore(store, storeId, decodeSchema(opened.value, schemaKey), SchemaSource.STORED)
            } catch (e: ConnectException) {
                if (e.code != Code.NOT_FOUND) throw e
            }
            val wallet = store.client.listKeyVersions(listKeyVersionsRequest { this.storeId = storeId; keyPrefix = V0_WALLET_PREFIX }).getOrThrow()
            if (wallet.keyVersionsCount > 0) return LdkStore(store, storeId, Schema.V0, SchemaSource.BDK_WALLET)
            if (!readOnly) {
                val sealed = store.builder.build(byteArrayOf(1, 0), -1, schemaKey.toByteArray())
                store.client.putObjects(
                    putObjectRequest {
                        this.storeId = storeId
                        transactionItems += keyValue { key = schemaKey; version = -1; value = ByteString.copyFrom(sealed) }
                    },
                ).getOrThrow()
            }
            return LdkStore(store, storeId, Schema.V1, SchemaSource.NEW)
        }

        /** Opens as the other [open] does, with an [EncryptedStore] over [client] and [keys]. */
        @JvmStatic
        suspend fun open(client: VssServiceClientInterface, keys: Keys, storeId: String, schema: Schema? = null, readOnly: Boolean = false): LdkStore =
            open(EncryptedStore(client, keys), storeId, schema, readOnly)

        /**
         * Reads a schema version as rust-lightning's `impl_writeable_tlv_based_enum!` writes
         * it: the variant id (0: V0, 1: V1), then a length-prefixed (BigSize) TLV stream,
         * which LDK Node's variants leave empty.
         */
        internal fun decodeSchema(bytes: ByteArray, storageKey: String): Schema {
            val id = bytes.getOrNull(0)?.toInt()
            val length = bytes.getOrNull(1)?.toInt()?.and(0xff)
            // A length below 0xfd is one BigSize byte.
            if ((id != 0 && id != 1) || length == null || length >= 0xfd || bytes.size != 2 + length) {
                throw VerificationException(
                    VerificationException.Kind.FORMAT,
                    storageKey,
                    "the schema version ${bytes.toHex()} is not LDK Node's V0 or V1",
                )
            }
            return if (id == 1) Schema.V1 else Schema.V0
        }

        /**
         * Throws unless the namespaces (and [key], when given) are valid as LDK's KVStore
         * requires: at most 120 characters of `A-Za-z0-9_-`, a non-empty key, and no
         * secondary namespace without a primary one.
         */
        private fun checkNamespaces(primaryNamespace: String, secondaryNamespace: String, key: String?) {
            for ((what, s) in listOf("primary namespace" to primaryNamespace, "secondary namespace" to secondaryNamespace, "key" to (key ?: ""))) {
                require(NAMESPACE.matches(s)) { "LDK store: the $what \"$s\" is not at most 120 characters of A-Z, a-z, 0-9, _ and -" }
            }
            require(key == null || key.isNotEmpty()) { "LDK store: the key may not be empty" }
            require(primaryNamespace.isNotEmpty() || secondaryNamespace.isEmpty()) {
                "LDK store: a secondary namespace needs a primary namespace"
            }
        }
    }
}
