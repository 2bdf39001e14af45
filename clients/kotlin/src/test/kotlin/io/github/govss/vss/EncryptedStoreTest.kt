package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.time.Duration
import java.util.Collections
import java.util.UUID
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/**
 * EncryptedStoreTest drives EncryptedStore and LdkStore against a real vss-server
 * (signature authentication, in-memory store), and plays the lying server with the plain
 * client: a tampered tag, a value swapped between keys, a value moved from another user, a
 * rolled-back conditional write, and LDK Node's two layouts with their schema detection.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EncryptedStoreTest {
    private lateinit var server: VssServer
    private val clients = Collections.synchronizedList(mutableListOf<VssClient>())

    @BeforeAll
    fun startServer() {
        server = VssServer.start(listOf("--auth", "signature"))
    }

    @AfterAll
    fun stopServer() {
        clients.forEach { it.close() }
        server.close()
    }

    /** Returns a client of a new user (a fresh signature key). */
    private fun user(): VssClient = VssClients.create(server.baseUrl, Credentials.signature(SignatureKey.generate())).also { clients += it }

    private fun newStore() = "enc-" + UUID.randomUUID()

    private val seed = ByteArray(64) { it.toByte() }
    private val keys = keysFromWalletSeed(seed)

    private suspend fun VssServiceClientInterface.raw(storeId: String, key: String): Vss.KeyValue =
        getObject(getObjectRequest { this.storeId = storeId; this.key = key }).getOrThrow().value

    private suspend fun VssServiceClientInterface.rawPut(storeId: String, key: String, version: Long, value: ByteString) {
        putObjects(putObjectRequest { this.storeId = storeId; transactionItems += keyValue { this.key = key; this.version = version; this.value = value } }).getOrThrow()
    }

    private suspend fun VssServiceClientInterface.rawKeys(storeId: String): List<String> =
        listAllPages(this, listKeyVersionsRequest { this.storeId = storeId }).keyVersionsList.map { it.key }

    private inline fun assertVerification(kind: VerificationException.Kind, storageKey: String, body: () -> Unit): VerificationException {
        val e = assertFailsWith<VerificationException> { body() }
        assertEquals(kind, e.kind, e.message)
        assertEquals(storageKey, e.storageKey)
        return e
    }

    @Test
    fun `round trip, the server sees neither keys nor values`() = runBlocking<Unit> {
        val vss = user()
        val enc = EncryptedStore(vss, keys)
        val store = newStore()
        enc.put(store, "alpha", "first".toByteArray(), 0)
        enc.put(store, listOf(EncryptedItem("alpha", "second".toByteArray(), 1), EncryptedItem("beta", ByteArray(0), 0), EncryptedItem("gamma", byteArrayOf(0, -1, 7), -1)))

        val alpha = enc.get(store, "alpha")
        assertEquals("second", String(alpha.value))
        assertEquals(2, alpha.version)
        assertEquals(1, alpha.sealedVersion)
        assertEquals(enc.storageKey("alpha"), alpha.storageKey)
        assertContentEquals(ByteArray(0), enc.get(store, "beta").value)
        val gamma = enc.get(store, "gamma")
        assertContentEquals(byteArrayOf(0, -1, 7), gamma.value)
        assertEquals(-1, gamma.sealedVersion)

        // What the server holds: obfuscated keys, Storables that do not contain the plaintext.
        val stored = vss.raw(store, enc.storageKey("alpha"))
        assertFalse(stored.key.contains("alpha"))
        assertFalse(stored.value.toStringUtf8().contains("second"))
        assertEquals(CIPHER_FORMAT, Vss.Storable.parseFrom(stored.value).encryptionMetadata.cipherFormat)
        assertEquals(setOf("alpha", "beta", "gamma").map(enc::storageKey).toSet(), vss.rawKeys(store).toSet())

        val listing = enc.list(store)
        assertEquals(listOf("alpha" to 2L, "beta" to 1L, "gamma" to 1L), listing.keyVersions.map { it.key to it.version }.sortedBy { it.first })

        // Conditional writes conflict as the plain client's do, and write nothing.
        val conflict = assertFailsWith<ConnectException> { enc.put(store, "alpha", "stale".toByteArray(), 1) }
        assertEquals(Code.ABORTED, conflict.code)
        assertEquals("second", String(enc.get(store, "alpha").value))

        // Deletes in a put, with the global version, then delete.
        enc.put(store, listOf(EncryptedItem("delta", "d".toByteArray(), 0)), deleteItems = listOf(DeleteItem("beta", 1)), globalVersion = 0)
        assertEquals(1, enc.list(store).globalVersion)
        enc.delete(store, "gamma", -1)
        assertEquals(listOf("alpha", "delta"), enc.list(store).keyVersions.map { it.key }.sorted())
        val missing = assertFailsWith<ConnectException> { enc.get(store, "gamma") }
        assertEquals(Code.NOT_FOUND, missing.code)
    }

    @Test
    fun `the README's encryption example works, as the wallet's own user`() = runBlocking<Unit> {
        // An LDK Node store of the seed, signed as LDK Node signs (m/877'/139').
        VssClients.create(server.baseUrl, Credentials.signature(signatureKeyFromWalletSeed(seed))).use { vss ->
            val ldk = LdkStore.open(vss, keys, "ldk-node")
            ldk.write("", "", "manager", ByteArray(10))
            ldk.write("payments", "", "0123abcd", ByteArray(3))
        }
        assertEquals(
            listOf("greeting v1: hello", "//manager: 10 bytes", "payments//0123abcd: 3 bytes"),
            readmeEncryptionExample(server.baseUrl, seed),
        )
    }

    @Test
    fun `listing pages through the whole store`() = runBlocking<Unit> {
        val enc = EncryptedStore(user(), keys)
        val store = newStore()
        val names = (1..130).map { "key-$it" }
        names.chunked(40).forEach { chunk -> enc.put(store, chunk.map { EncryptedItem(it, it.toByteArray(), 0) }) }
        assertEquals(names.sorted(), enc.list(store).keyVersions.map { it.key }.sorted())
    }

    @Test
    fun `a tampered tag is detected`() = runBlocking<Unit> {
        val vss = user()
        val enc = EncryptedStore(vss, keys)
        val store = newStore()
        enc.put(store, "k", "value".toByteArray(), 0)
        val key = enc.storageKey("k")
        val storable = Vss.Storable.parseFrom(vss.raw(store, key).value)
        val tag = storable.encryptionMetadata.tag.toByteArray().also { it[15] = (it[15].toInt() xor 1).toByte() }
        val tampered = storable.toBuilder().setEncryptionMetadata(storable.encryptionMetadata.toBuilder().setTag(ByteString.copyFrom(tag))).build()
        vss.rawPut(store, key, 1, tampered.toByteString())
        assertVerification(VerificationException.Kind.AUTHENTICATION, key) { enc.get(store, "k") }

        // A value that is no Storable at all, and one with an unknown cipher.
        vss.rawPut(store, key, 2, ByteString.copyFromUtf8("plaintext"))
        assertVerification(VerificationException.Kind.FORMAT, key) { enc.get(store, "k") }
        val other = storable.toBuilder().setEncryptionMetadata(storable.encryptionMetadata.toBuilder().setCipherFormat("AES256GCM")).build()
        vss.rawPut(store, key, 3, other.toByteString())
        assertVerification(VerificationException.Kind.FORMAT, key) { enc.get(store, "k") }
    }

    @Test
    fun `a value swapped between keys is detected`() = runBlocking<Unit> {
        val vss = user()
        val enc = EncryptedStore(vss, keys)
        val store = newStore()
        enc.put(store, listOf(EncryptedItem("balance", "100".toByteArray(), 0), EncryptedItem("limit", "5".toByteArray(), 0)))
        val (balance, limit) = enc.storageKey("balance") to enc.storageKey("limit")
        val a = vss.raw(store, balance).value
        val b = vss.raw(store, limit).value
        // Both at version 1 and sealed with version 0: only the associated data can tell.
        vss.rawPut(store, balance, 1, b)
        vss.rawPut(store, limit, 1, a)
        assertVerification(VerificationException.Kind.AUTHENTICATION, balance) { enc.get(store, "balance") }
        assertVerification(VerificationException.Kind.AUTHENTICATION, limit) { enc.get(store, "limit") }
    }

    @Test
    fun `a value moved from another user is detected, and that user's keys do not deobfuscate`() = runBlocking<Unit> {
        val alice = user()
        val mallory = user()
        val store = newStore()
        val theirs = EncryptedStore(mallory, keysFromWalletSeed(ByteArray(64) { 9 }))
        theirs.put(store, "k", "theirs".toByteArray(), 0)
        val moved = mallory.raw(store, theirs.storageKey("k")).value

        val enc = EncryptedStore(alice, keys)
        alice.rawPut(store, enc.storageKey("k"), 0, moved)
        assertVerification(VerificationException.Kind.AUTHENTICATION, enc.storageKey("k")) { enc.get(store, "k") }

        alice.rawPut(store, theirs.storageKey("k"), 0, moved)
        assertVerification(VerificationException.Kind.FORMAT, theirs.storageKey("k")) { enc.list(store) }
    }

    @Test
    fun `a rolled-back conditional write is detected`() = runBlocking<Unit> {
        val vss = user()
        val enc = EncryptedStore(vss, keys)
        val store = newStore()
        val key = enc.storageKey("channel")
        enc.put(store, "channel", "state 1".toByteArray(), 0)
        val old = vss.raw(store, key).value
        enc.put(store, "channel", "state 2".toByteArray(), 1)
        enc.put(store, "channel", "state 3".toByteArray(), 2)
        vss.rawPut(store, key, 3, old) // the server serves state 1 as version 4
        val e = assertVerification(VerificationException.Kind.VERSION, key) { enc.get(store, "channel") }
        assertEquals(0, e.sealedVersion)
        assertEquals(4, e.serverVersion)

        // What the version rule cannot see: unconditional writes seal -1.
        enc.put(store, "free", "old".toByteArray(), -1)
        val oldFree = vss.raw(store, enc.storageKey("free")).value
        enc.put(store, "free", "new".toByteArray(), -1)
        vss.rawPut(store, enc.storageKey("free"), -1, oldFree)
        assertEquals("old", String(enc.get(store, "free").value))
    }

    @Test
    fun `writes go under a lease`() = runBlocking<Unit> {
        val vss = user()
        val store = newStore()
        val lease = vss.acquireLease(store, "writer", ttl = Duration.ofSeconds(30))
        val enc = EncryptedStore(vss, keys).withLease(lease)
        enc.put(store, "k", "under the lease".toByteArray(), 0)
        assertEquals("under the lease", String(enc.get(store, "k").value))
        lease.release()
        assertFailsWith<LeaseLostException> { enc.put(store, "k", "late".toByteArray(), 1) }
        assertFailsWith<LeaseLostException> { enc.delete(store, "k", -1) }
        assertEquals("under the lease", String(enc.get(store, "k").value))
    }

    @Test
    fun `LDK V1 on a new store - detection, writes, listings, a moved value`() = runBlocking<Unit> {
        val vss = user()
        val store = newStore()
        val ldk = LdkStore.open(vss, keys, store)
        assertEquals(LdkStore.Schema.V1, ldk.schema)
        assertEquals(LdkStore.SchemaSource.NEW, ldk.schemaSource)
        val schemaKey = ldk.storageKey("", "", LdkStore.SCHEMA_VERSION_KEY)
        assertEquals(listOf(schemaKey), vss.rawKeys(store))
        assertEquals(1, vss.raw(store, schemaKey).version)

        ldk.write("", "", "manager", "manager bytes".toByteArray())
        ldk.write("monitors", "", "abc_1", "monitor".toByteArray())
        ldk.write("ns", "sub", "k", "in sub".toByteArray())
        ldk.write("ns", "sub2", "k", "in sub2".toByteArray())
        ldk.write("ns", "sub", "k", "in sub, again".toByteArray())
        ldk.write("payments", "", "gone", "x".toByteArray())
        ldk.remove("payments", "", "gone")
        ldk.remove("payments", "", "never-written")

        val again = LdkStore.open(vss, keys, store)
        assertEquals(LdkStore.Schema.V1, again.schema)
        assertEquals(LdkStore.SchemaSource.STORED, again.schemaSource)
        assertEquals("in sub, again", String(again.read("ns", "sub", "k")))
        val v = again.get("", "", "manager")
        assertEquals(1, v.version)
        assertEquals(-1, v.sealedVersion)
        assertEquals(listOf("manager"), again.listKeys("", ""))
        assertEquals(listOf("k"), again.listKeys("ns", "sub"))
        assertEquals(emptyList(), again.listKeys("payments", ""))
        assertEquals(
            listOf(Triple("", "", listOf("manager")), Triple("monitors", "", listOf("abc_1")), Triple("ns", "sub", listOf("k")), Triple("ns", "sub2", listOf("k"))),
            again.listNamespaces().map { Triple(it.primaryNamespace, it.secondaryNamespace, it.keys.map { k -> k.key }) },
        )
        // Namespaces and keys are obfuscated.
        assertTrue(vss.rawKeys(store).none { it.contains("monitors") || it.contains("ns#") || it.contains("manager") })

        // A value the server copies to another key (or namespace) fails the tag.
        val to = ldk.storageKey("ns", "sub2", "k")
        vss.rawPut(store, to, -1, vss.raw(store, ldk.storageKey("ns", "sub", "k")).value)
        assertVerification(VerificationException.Kind.AUTHENTICATION, to) { again.read("ns", "sub2", "k") }

        // Read-only detection of a new store writes nothing.
        val fresh = newStore()
        val readOnly = LdkStore.open(vss, keys, fresh, readOnly = true)
        assertEquals(LdkStore.Schema.V1, readOnly.schema)
        assertEquals(emptyList(), vss.rawKeys(fresh))
    }

    @Test
    fun `LDK V0 - detected by the wallet keys, namespaces in clear, moved values undetected`() = runBlocking<Unit> {
        val vss = user()
        val store = newStore()
        val v0 = LdkStore.open(vss, keys, store, schema = LdkStore.Schema.V0)
        assertEquals(LdkStore.SchemaSource.GIVEN, v0.schemaSource)
        v0.write("", "", "manager", "manager (V0)".toByteArray())
        v0.write("bdk_wallet", "", "descriptor", "wpkh(...)".toByteArray())
        v0.write("ns", "sub", "k", "ns/sub/k".toByteArray())
        v0.write("ns", "sub2", "k", "ns/sub2/k".toByteArray())
        assertEquals(emptyList(), vss.rawKeys(store).filter { it.contains(LdkStore.SCHEMA_VERSION_KEY) })

        val opened = LdkStore.open(vss, keys, store)
        assertEquals(LdkStore.Schema.V0, opened.schema)
        assertEquals(LdkStore.SchemaSource.BDK_WALLET, opened.schemaSource)
        // Detection wrote nothing to a V0 store.
        assertEquals(4, vss.rawKeys(store).size)
        val raw = vss.rawKeys(store).toSet()
        assertTrue(opened.storageKey("", "", "manager") in raw && !opened.storageKey("", "", "manager").contains('#'))
        assertTrue(raw.any { it.startsWith("bdk_wallet##") } && raw.any { it.startsWith("ns#sub#") } && raw.any { it.startsWith("ns#sub2#") })

        assertEquals("manager (V0)", String(opened.read("", "", "manager")))
        assertEquals(listOf("manager"), opened.listKeys("", ""))
        assertEquals(listOf("k"), opened.listKeys("ns", "sub"))
        assertEquals(
            listOf("" to "", "bdk_wallet" to "", "ns" to "sub", "ns" to "sub2"),
            opened.listNamespaces().map { it.primaryNamespace to it.secondaryNamespace },
        )

        // V0 seals with empty associated data: a value moved to another key reads as that key's.
        val to = opened.storageKey("ns", "sub", "k")
        vss.rawPut(store, to, -1, vss.raw(store, opened.storageKey("ns", "sub2", "k")).value)
        assertEquals("ns/sub2/k", String(opened.read("ns", "sub", "k")))
        // It still catches tampering and other keys' data.
        vss.rawPut(store, to, -1, ByteString.copyFromUtf8("plaintext"))
        assertVerification(VerificationException.Kind.FORMAT, to) { opened.read("ns", "sub", "k") }
        val foreign = EncryptedStore(vss, keysFromWalletSeed(ByteArray(64) { 1 })).builder.build("x".toByteArray(), -1, ByteArray(0))
        vss.rawPut(store, to, -1, ByteString.copyFrom(foreign))
        assertVerification(VerificationException.Kind.AUTHENTICATION, to) { opened.read("ns", "sub", "k") }
    }

    @Test
    fun `a schema record that does not verify fails the open`() = runBlocking<Unit> {
        val vss = user()
        val store = newStore()
        val schemaKey = LdkStore.open(vss, keys, store).storageKey("", "", LdkStore.SCHEMA_VERSION_KEY)
        // Sealed with the wrong associated data (empty, as V0 would), then an unknown schema id.
        val enc = EncryptedStore(vss, keys)
        vss.rawPut(store, schemaKey, -1, ByteString.copyFrom(enc.builder.build(byteArrayOf(1, 0), -1, ByteArray(0))))
        assertVerification(VerificationException.Kind.AUTHENTICATION, schemaKey) { LdkStore.open(vss, keys, store) }
        vss.rawPut(store, schemaKey, -1, ByteString.copyFrom(enc.builder.build(byteArrayOf(2, 0), -1, schemaKey.toByteArray())))
        assertVerification(VerificationException.Kind.FORMAT, schemaKey) { LdkStore.open(vss, keys, store) }
        vss.rawPut(store, schemaKey, -1, ByteString.copyFrom(enc.builder.build(byteArrayOf(0, 0), -1, schemaKey.toByteArray())))
        assertEquals(LdkStore.Schema.V0, LdkStore.open(vss, keys, store).schema)
    }
}
