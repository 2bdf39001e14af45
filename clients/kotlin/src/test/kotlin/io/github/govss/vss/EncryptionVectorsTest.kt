package io.github.govss.vss

import com.google.gson.JsonObject
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import vss.v1.Vss
import java.security.SecureRandom
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue
import kotlin.test.fail

/**
 * EncryptionVectorsTest checks the encryption layer byte for byte against
 * compat/rust-client/encryption-vectors.json (computed by the real vss-client-ng 0.6.0 and
 * LDK Node's derivation) and against the crate's own known answers.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EncryptionVectorsTest {
    private val doc = EncryptionVectors.doc

    // LdkStore needs a client; these tests only name keys, so it is never called.
    private val idle = VssClients.create("http://127.0.0.1:9", Credentials.NONE)

    @AfterAll
    fun close() = idle.close()

    @Test
    fun `keys from the wallet seed and from the VSS seed`() {
        val k = doc.obj("keys")
        assertEquals("m/877'", k.str("bip32_path"))
        assertEquals(k.str("vss_seed"), vssSeedFromWalletSeed(k.hex("wallet_seed")).toHex())
        assertEquals(k.str("prk"), hkdf(k.hex("vss_seed"), "pseudo_random_key".toByteArray()).toHex())
        for (keys in listOf(keysFromWalletSeed(k.hex("wallet_seed")), keysFromVssSeed(k.hex("vss_seed")))) {
            assertEquals(k.str("data_encryption_key"), keys.dataEncryptionKey.toHex())
            assertEquals(k.str("obfuscation_master_key"), keys.obfuscationMasterKey.toHex())
        }
    }

    @Test
    fun `BIP32 hardened derivation and LDK Node's signing key`() {
        // BIP32 test vector 1: m and m/0H.
        val tv1 = unhex("000102030405060708090a0b0c0d0e0f")
        assertEquals("e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35", hardenedKey(tv1).toHex())
        assertEquals("edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea", hardenedKey(tv1, 0).toHex())
        // m/877'/139' of the vectors' wallet seed, as @scure/bip32 derives it.
        val signing = signatureKeyFromWalletSeed(doc.obj("keys").hex("wallet_seed"))
        assertEquals("b57e64fe9c1607bf6bab746d4739541cd2fd6b6cefb3564e6b9940528f9d2c82", signing.secretKey.toHex())
        assertEquals("0257401ab7590ba9b8c3a590ec10247f791e3da7eeb3a1bf33ae0268bd2d7e5272", signing.publicKeyHex)
    }

    @Test
    fun `keys never print their bytes`() {
        val k = doc.obj("keys")
        val keys = keysFromVssSeed(k.hex("vss_seed"))
        for (text in listOf(keys.toString(), KeyObfuscator(keys.obfuscationMasterKey).toString(), StorableBuilder(keys.dataEncryptionKey).toString())) {
            assertFalse(text.contains(k.str("data_encryption_key")) || text.contains(k.str("obfuscation_master_key")), text)
            assertTrue(text.contains("redacted"), text)
        }
    }

    @Test
    fun `seeds of the wrong length are refused`() {
        assertFailsWith<IllegalArgumentException> { keysFromWalletSeed(ByteArray(15)) }
        assertFailsWith<IllegalArgumentException> { keysFromWalletSeed(ByteArray(65)) }
        assertFailsWith<IllegalArgumentException> { keysFromVssSeed(ByteArray(31)) }
        assertFailsWith<IllegalArgumentException> { Keys(ByteArray(32), ByteArray(16)) }
    }

    @Test
    fun `obfuscated keys`() {
        val cases = doc.objects("obfuscated_keys")
        assertTrue(cases.size >= 7)
        for (c in cases) {
            val obfuscator = KeyObfuscator(c.hex("obfuscation_master_key"))
            assertEquals(c.str("key_utf8_hex"), c.str("key").toByteArray().toHex())
            assertEquals(c.str("obfuscated"), obfuscator.obfuscate(c.str("key")), c.str("key"))
            assertEquals(c.str("key"), obfuscator.deobfuscate(c.str("obfuscated")))
        }
    }

    @Test
    fun `the crate's own known answers`() {
        // vss-client-ng 0.6.0, src/util/key_obfuscator.rs: obfuscate_deobfuscate_deterministic, deobfuscate_v031_key.
        assertEquals(
            "cMoet5WTvl0nYds+VW7JPCtXUq24DtMG2dR9apAi/T5jy8eNIEyDrUAJBS4geeUuX+XGXPqlizIByOip2g",
            KeyObfuscator(ByteArray(32) { 42 }).obfuscate("a_semi_secret_key"),
        )
        assertEquals(
            "my_storage_key_v031_compat",
            KeyObfuscator(ByteArray(32) { 0xAB.toByte() })
                .deobfuscate("nxrixRQPGawY+a9JFLThii0RgeADtEdSjh2YDgpZhBKOuw6GKr5UAIIwsQCathJlZsmuSku+RGB1/JuxFUMQGoAwa+M8tg"),
        )
        // src/util/storable_builder.rs: decrypt_v031_storable (key 0..31, empty associated data).
        val v031 = unhex(
            "0a1d3219e9fb45d742f56c401b7413e7ae07fd81e1433af2863ce88f01f86c12320a104368614368613230" +
                "506f6c7931333035120c0000000000010203040506071a1087163502261e30ec7cf14b7970a24116",
        )
        val opened = StorableBuilder(ByteArray(32) { it.toByte() }).deconstruct(v031, ByteArray(0), "v031")
        assertEquals("backward_compat_test_data", String(opened.value))
        assertEquals(42, opened.sealedVersion)
    }

    @Test
    fun `sealed values`() {
        val cases = doc.objects("sealed")
        assertTrue(cases.any { it.long("version") == Long.MAX_VALUE } && cases.any { it.long("version") == -2L })
        for (c in cases) {
            val name = c.str("name")
            val builder = StorableBuilder(c.hex("data_encryption_key"))
            assertEquals(
                c.str("plaintext_blob_hex"),
                Vss.PlaintextBlob.newBuilder().setValue(com.google.protobuf.ByteString.copyFrom(c.hex("value_hex"))).setVersion(c.long("version")).build().toByteArray().toHex(),
                name,
            )
            assertEquals(CIPHER_FORMAT, c.str("cipher_format"))
            assertEquals(c.str("storable_hex"), builder.buildWithNonce(c.hex("value_hex"), c.long("version"), c.hex("aad_hex"), c.hex("nonce_hex")).toHex(), name)
            val storable = Vss.Storable.parseFrom(c.hex("storable_hex"))
            assertEquals(c.str("ciphertext_hex"), storable.data.toByteArray().toHex(), name)
            assertEquals(c.str("tag_hex"), storable.encryptionMetadata.tag.toByteArray().toHex(), name)
            val opened = builder.deconstruct(c.hex("storable_hex"), c.hex("aad_hex"), name)
            assertContentEquals(c.hex("value_hex"), opened.value, name)
            assertEquals(c.long("version"), opened.sealedVersion, name)
        }
    }

    @Test
    fun `random nonces`() {
        val builder = StorableBuilder(ByteArray(32), SecureRandom())
        val a = Vss.Storable.parseFrom(builder.build("same".toByteArray(), 0, ByteArray(0)))
        val b = Vss.Storable.parseFrom(builder.build("same".toByteArray(), 0, ByteArray(0)))
        assertEquals(12, a.encryptionMetadata.nonce.size())
        assertNotEquals(a.encryptionMetadata.nonce, b.encryptionMetadata.nonce)
        assertNotEquals(a.data, b.data)
    }

    @Test
    fun `negative storables`() {
        val cases = doc.objects("negative_storables")
        assertEquals(16, cases.size)
        for (c in cases) {
            val name = c.str("name")
            val builder = StorableBuilder(c.hex("data_encryption_key"))
            val outcome = try {
                val opened = builder.deconstruct(c.hex("storable_hex"), c.hex("aad_hex"), name)
                checkSealedVersion(name, opened.sealedVersion, c.long("server_version"))
                null
            } catch (e: VerificationException) {
                assertEquals(name, e.storageKey)
                e.kind.name
            }
            assertEquals(c.strOrNull("error"), outcome, "$name: ${c.str("description")}")
        }
    }

    @Test
    fun `negative keys`() {
        val obfuscator = KeyObfuscator(doc.obj("keys").hex("obfuscation_master_key"))
        val cases = doc.objects("negative_keys")
        assertTrue(cases.any { it.str("name") == "trailing_bits" })
        for (c in cases) {
            val outcome = try {
                obfuscator.deobfuscate(c.str("obfuscated"))
                null
            } catch (e: VerificationException) {
                assertEquals(c.str("obfuscated"), e.storageKey)
                e.kind.name
            }
            assertEquals(c.strOrNull("error"), outcome, "${c.str("name")}: ${c.str("description")}")
        }
    }

    @Test
    fun `the version rule`() {
        for (c in doc.objects("version_checks")) {
            val outcome = try {
                checkSealedVersion("k", c.long("sealed_version"), c.long("server_version"))
                null
            } catch (e: VerificationException) {
                assertEquals(c.long("sealed_version"), e.sealedVersion)
                assertEquals(c.long("server_version"), e.serverVersion)
                e.kind.name
            }
            assertEquals(c.strOrNull("error"), outcome, c.toString())
        }
    }

    private fun ldk(schema: LdkStore.Schema, keys: Keys): LdkStore = runBlocking { LdkStore.open(idle, keys, "unused", schema = schema) }

    @Test
    fun `LDK Node's store keys, prefixes and associated data in both schemas`() {
        val keys = keysFromVssSeed(doc.obj("keys").hex("vss_seed"))
        val cases = doc.objects("ldk_store_keys")
        assertTrue(cases.size >= 5)
        for (schema in LdkStore.Schema.values()) {
            val store = ldk(schema, keys)
            for (c in cases) {
                val want: JsonObject = c.obj(schema.name.lowercase())
                val (p, s, k) = Triple(c.str("primary"), c.str("secondary"), c.str("key"))
                val storageKey = store.storageKey(p, s, k)
                assertEquals(want.str("store_key"), storageKey, "$schema $p/$s/$k")
                assertEquals(want.str("aad_hex"), store.aad(storageKey).toHex(), "$schema $p/$s/$k")
                // LDK Node's prefix has no final #; ours has it, so that a listing cannot match
                // a longer namespace. V0 keys under empty namespaces have no prefix at all.
                if (schema == LdkStore.Schema.V1 || p.isNotEmpty()) {
                    assertEquals(want.str("prefix") + "#", store.prefix(p, s), "$schema $p/$s/$k")
                } else {
                    assertEquals("#", want.str("prefix"))
                    assertEquals("", store.prefix(p, s))
                }
                val parsed = store.parseStorageKey(storageKey)
                assertEquals(Triple(p, s, k), Triple(parsed.primaryNamespace, parsed.secondaryNamespace, parsed.key))
            }
        }
    }

    @Test
    fun `LDK Node's schema version record`() {
        val sv = doc.obj("ldk_schema_version")
        val keys = keysFromVssSeed(doc.obj("keys").hex("vss_seed"))
        val store = ldk(LdkStore.Schema.V1, keys)
        assertEquals(sv.str("store_key"), store.storageKey(sv.str("primary"), sv.str("secondary"), sv.str("key")))
        assertEquals(LdkStore.SCHEMA_VERSION_KEY, sv.str("key"))
        assertEquals(LdkStore.V0_WALLET_PREFIX, sv.str("v0_detection_prefix"))
        assertEquals(LdkStore.Schema.V1, LdkStore.decodeSchema(sv.hex("v1_value_hex"), "k"))
        assertEquals(LdkStore.Schema.V0, LdkStore.decodeSchema(sv.hex("v0_value_hex"), "k"))
        for (bad in listOf("", "01", "02 00", "0101", "0100ff")) {
            val e = assertFailsWith<VerificationException> { LdkStore.decodeSchema(unhex(bad.replace(" ", "")), "k") }
            assertEquals(VerificationException.Kind.FORMAT, e.kind)
        }
        val sealed = sv.obj("sealed_v1")
        assertEquals(sv.str("v1_value_hex"), sealed.str("value_hex"))
        assertEquals(-1, sealed.long("version"))
        val builder = StorableBuilder(keys.dataEncryptionKey)
        assertEquals(sealed.str("storable_hex"), builder.buildWithNonce(sealed.hex("value_hex"), -1, sv.str("store_key").toByteArray(), sealed.hex("nonce_hex")).toHex())
        assertContentEquals(sealed.hex("value_hex"), builder.deconstruct(sealed.hex("storable_hex"), sv.str("store_key").toByteArray(), "k").value)
    }

    @Test
    fun `LDK key names that LDK Node refuses are refused`() {
        val store = ldk(LdkStore.Schema.V1, keysFromVssSeed(ByteArray(32) { 7 }))
        runBlocking {
            for ((p, s, k) in listOf(Triple("", "sub", "k"), Triple("ns", "", ""), Triple("n s", "", "k"), Triple("ns", "", "k#1"), Triple("x".repeat(121), "", "k"))) {
                assertFailsWith<IllegalArgumentException>("$p/$s/$k") { store.read(p, s, k) }
                assertFailsWith<IllegalArgumentException>("$p/$s/$k") { store.write(p, s, k, ByteArray(0)) }
            }
        }
    }

    @Test
    fun `storage keys that are not of the layout do not parse`() {
        val keys = keysFromVssSeed(doc.obj("keys").hex("vss_seed"))
        val v0 = ldk(LdkStore.Schema.V0, keys)
        val v1 = ldk(LdkStore.Schema.V1, keys)
        val good = v0.storageKey("", "", "k")
        for ((store, key) in listOf(v0 to "a#$good", v0 to "a#b#c#$good", v0 to "ns#sub#notbase64!", v1 to good, v1 to "$good#$good", v1 to "x#$good")) {
            try {
                store.parseStorageKey(key)
                fail("${store.schema} $key parsed")
            } catch (e: VerificationException) {
                assertEquals(VerificationException.Kind.FORMAT, e.kind)
                assertEquals(key, e.storageKey)
            }
        }
    }
}
