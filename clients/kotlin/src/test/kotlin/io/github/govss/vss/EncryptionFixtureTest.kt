package io.github.govss.vss

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import kotlin.test.assertEquals
import kotlin.test.assertTrue

/**
 * EncryptionFixtureTest runs the Kotlin side of the cross-language encryption test (what
 * compat/encryption/kotlin.sh runs) against a real vss-server with `--auth none`: it writes
 * the fixture of encryption-vectors.json and reads it back, every check passing, the
 * tampering included.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EncryptionFixtureTest {
    private lateinit var server: VssServer
    private lateinit var client: VssClient

    @BeforeAll
    fun startServer() {
        server = VssServer.start(listOf("--auth", "none"))
        client = VssClients.create(server.baseUrl, Credentials.NONE)
    }

    @AfterAll
    fun stopServer() {
        client.close()
        server.close()
    }

    @Test
    fun `the fixture written by Kotlin reads back and verifies`() = runBlocking<Unit> {
        val fixture = EncryptionFixture(client, EncryptionVectors.doc)
        assertTrue(fixture.write("enc-kotlin-test") > 0)
        val lines = mutableListOf<String>()
        val checks = fixture.read("enc-kotlin-test") { lines += it }
        assertEquals(emptyList(), checks.failed, lines.joinToString("\n"))
        assertTrue(checks.passed >= 30, "${checks.passed} checks")

        // A reader of another prefix (nothing written) fails instead of passing vacuously.
        val empty = fixture.read("enc-nobody") {}
        assertTrue(empty.failed.isNotEmpty())
    }
}
