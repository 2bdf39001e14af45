package io.github.govss.vss

import com.connectrpc.getOrThrow
import com.google.gson.JsonObject
import com.google.protobuf.ByteString
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest

/**
 * EncryptionFixture is the Kotlin side of the cross-language encryption test (the
 * `fixture` of encryption-vectors.json; ENCRYPTION-VECTORS.md): [write] runs every store's
 * ops through [EncryptedStore] and [LdkStore] (and the raw tampering through the plain
 * client), [read] checks every store's `expect`, including that each tampering is
 * detected. compat/encryption/kotlin.sh runs it through [main] in EncryptionCompat.kt;
 * EncryptionFixtureTest runs it against a test server.
 */
class EncryptionFixture(private val client: VssServiceClientInterface, doc: JsonObject) {
    private val fixture = doc.obj("fixture")
    private val keys = keysFromWalletSeed(fixture.hex("wallet_seed"))
    private val enc = EncryptedStore(client, keys)

    /** Writes every store of the fixture under [prefix]; returns the number of ops. */
    suspend fun write(prefix: String): Int {
        var ops = 0
        for (st in fixture.objects("stores")) {
            val storeId = prefix + st.str("store_id_suffix")
            var ldk: LdkStore? = null
            var saved: ByteString? = null
            for (op in st.objects("ops")) {
                try {
                    when (val name = op.str("op")) {
                        "put" -> enc.put(storeId, op.objects("items").map { EncryptedItem(it.str("key"), it.hex("value_hex"), it.long("version")) })
                        "delete" -> enc.delete(storeId, op.str("key"), op.long("version"))
                        "ldk_open" -> {
                            val want = LdkStore.Schema.valueOf(op.str("schema"))
                            // V1: LDK Node's detection on an empty store; V0: the layout from before schema versions, nothing written.
                            val opened = if (want == LdkStore.Schema.V1) LdkStore.open(enc, storeId) else LdkStore.open(enc, storeId, schema = want)
                            check(opened.schema == want) { "opened as ${opened.schema}, want $want" }
                            ldk = opened
                        }
                        "ldk_write" -> checkNotNull(ldk) { "ldk_open first" }.write(op.str("primary"), op.str("secondary"), op.str("key"), op.hex("value_hex"))
                        "ldk_remove" -> checkNotNull(ldk) { "ldk_open first" }.remove(op.str("primary"), op.str("secondary"), op.str("key"))
                        "raw_copy" -> rawPut(storeId, op.str("to"), op.long("version"), rawGet(storeId, op.str("from")).value)
                        "raw_flip" -> {
                            val kv = rawGet(storeId, op.str("key"))
                            val storable = Vss.Storable.parseFrom(kv.value)
                            val data = storable.data.toByteArray().also { it[0] = (it[0].toInt() xor 0x01).toByte() }
                            rawPut(storeId, kv.key, op.long("version"), storable.toBuilder().setData(ByteString.copyFrom(data)).build().toByteString())
                        }
                        "raw_save" -> saved = rawGet(storeId, op.str("key")).value
                        "raw_restore" -> rawPut(storeId, op.str("key"), op.long("version"), checkNotNull(saved) { "raw_save first" })
                        else -> error("unknown op $name")
                    }
                } catch (e: Exception) {
                    throw IllegalStateException("$storeId: $op: $e", e)
                }
                ops++
            }
        }
        return ops
    }

    private suspend fun rawGet(storeId: String, key: String): Vss.KeyValue =
        client.getObject(getObjectRequest { this.storeId = storeId; this.key = key }).getOrThrow().value

    private suspend fun rawPut(storeId: String, key: String, version: Long, value: ByteString) {
        client.putObjects(
            putObjectRequest {
                this.storeId = storeId
                transactionItems += keyValue { this.key = key; this.version = version; this.value = value }
            },
        ).getOrThrow()
    }

    /** Checks counts checks; a failed check is recorded and the reading goes on, so one run shows them all. */
    class Checks(private val out: (String) -> Unit) {
        var passed = 0
            private set
        val failed = mutableListOf<String>()

        suspend fun check(name: String, body: suspend () -> String?) {
            val problem = try {
                body()
            } catch (e: Exception) {
                "unexpected $e"
            }
            if (problem == null) {
                passed++
                out("ok   $name")
            } else {
                failed += "$name: $problem"
                out("FAIL $name: $problem")
            }
        }
    }

    /** Checks what the writer with [prefix] wrote against every store's `expect`, printing each check to [out]. */
    suspend fun read(prefix: String, out: (String) -> Unit): Checks {
        val c = Checks(out)
        for (st in fixture.objects("stores")) {
            val storeId = prefix + st.str("store_id_suffix")
            val expect = st.obj("expect")

            c.check("$storeId: store keys and versions as stored") {
                val want = expect.objects("raw_keys").map { it.str("store_key") to it.long("version") }
                val got = listAllPages(client, listKeyVersionsRequest { this.storeId = storeId }).keyVersionsList
                    .map { it.key to it.version }.sortedBy { it.first }
                same(got, want)
            }

            when (val layout = st.str("layout")) {
                "vss-client-ng" -> {
                    c.check("$storeId: list (keys in clear)") {
                        val want = expect.objects("list").map { it.str("key") to it.long("version") }
                        same(enc.list(storeId).keyVersions.map { it.key to it.version }.sortedBy { it.first }, want)
                    }
                    for (r in expect.objects("reads")) {
                        val key = r.str("key")
                        c.check("$storeId: get \"$key\" (${r.strOrNull("error") ?: "value"})") {
                            if (enc.storageKey(key) != r.str("store_key")) return@check "storage key ${enc.storageKey(key)}, want ${r.str("store_key")}"
                            checkRead(r) { enc.get(storeId, key).let { Triple(it.value, it.version, it.sealedVersion) } }
                        }
                    }
                }
                "ldk" -> {
                    val want = LdkStore.Schema.valueOf(expect.str("schema"))
                    var ldk: LdkStore? = null
                    // V1: the schema key is there and decrypts to 01 00; V0: it is absent, and keys under bdk_wallet# tell.
                    val source = if (want == LdkStore.Schema.V1) LdkStore.SchemaSource.STORED else LdkStore.SchemaSource.BDK_WALLET
                    c.check("$storeId: open detects schema $want ($source)") {
                        val opened = LdkStore.open(enc, storeId, readOnly = true)
                        ldk = opened
                        same(opened.schema to opened.schemaSource, want to source)
                    }
                    val store = ldk?.takeIf { it.schema == want } ?: continue
                    val namespaces = expect.objects("namespaces")
                    c.check("$storeId: listNamespaces") {
                        val got = store.listNamespaces().map { Triple(it.primaryNamespace, it.secondaryNamespace, it.keys.map { k -> k.key }.sorted()) }
                        same(got, namespaces.map { Triple(it.str("primary"), it.str("secondary"), it.strings("keys").sorted()) })
                    }
                    for (n in namespaces) {
                        val (p, s) = n.str("primary") to n.str("secondary")
                        c.check("$storeId: listKeys(\"$p\", \"$s\")") { same(store.listKeys(p, s).sorted(), n.strings("keys").sorted()) }
                    }
                    for (r in expect.objects("reads")) {
                        val (p, s, k) = Triple(r.str("primary"), r.str("secondary"), r.str("key"))
                        val outcome = r.strOrNull("error") ?: if (r.has("undetected")) "value, undetected copy" else "value"
                        c.check("$storeId: read(\"$p\", \"$s\", \"$k\") ($outcome)") {
                            if (store.storageKey(p, s, k) != r.str("store_key")) return@check "storage key ${store.storageKey(p, s, k)}, want ${r.str("store_key")}"
                            checkRead(r) { store.get(p, s, k).let { Triple(it.value, it.version, it.sealedVersion) } }
                        }
                    }
                }
                else -> error("unknown layout $layout")
            }
        }
        return c
    }

    private fun <T> same(got: T, want: T): String? = if (got == want) null else "got $got, want $want"

    /** Compares a read (value, server version, sealed version) with a `reads[]` entry; null when it agrees. */
    private suspend fun checkRead(r: JsonObject, read: suspend () -> Triple<ByteArray, Long, Long>): String? {
        val kind = r.strOrNull("error")
        val got = try {
            read()
        } catch (e: VerificationException) {
            return if (kind == e.kind.name) null else "want ${kind ?: "the value"}, got $e"
        }
        if (kind != null) return "want a $kind VerificationException, got data (${got.first.size} bytes at version ${got.second})"
        if (!got.first.contentEquals(r.hex("value_hex"))) return "value ${got.first.toHex()} differs from ${r.str("value_hex")}"
        return same(got.second to got.third, r.long("version") to r.long("sealed_version"))
    }
}
