@file:JvmName("EncryptionCompat")

package io.github.govss.vss

import kotlinx.coroutines.runBlocking
import kotlin.system.exitProcess

/**
 * The program behind compat/encryption/kotlin.sh: `write <prefix>` writes the fixture of
 * encryption-vectors.json under the store-id prefix, `read <prefix>` checks what a writer
 * wrote there and prints `N checks passed`, exiting non-zero unless every check passed.
 * The server is `VSS_BASE_URL` (run with `--auth none`), the vectors `VSS_ENCRYPTION_VECTORS`.
 */
fun main(args: Array<String>) {
    if (args.size != 2 || args[0] !in setOf("write", "read")) {
        System.err.println("usage: kotlin.sh write|read <store-id-prefix>")
        exitProcess(2)
    }
    val (command, prefix) = args
    val baseUrl = System.getenv("VSS_BASE_URL") ?: run {
        System.err.println("VSS_BASE_URL is not set")
        exitProcess(2)
    }
    val code = VssClients.create(baseUrl, Credentials.NONE).use { client ->
        val fixture = EncryptionFixture(client, EncryptionVectors.doc)
        runBlocking {
            when (command) {
                "write" -> {
                    val ops = fixture.write(prefix)
                    println("kotlin wrote the fixture under $prefix: $ops ops")
                    0
                }
                else -> {
                    val checks = fixture.read(prefix) { println(it) }
                    if (checks.failed.isEmpty()) {
                        println("${checks.passed} checks passed")
                        0
                    } else {
                        System.err.println("kotlin read $prefix: ${checks.failed.size} checks failed, ${checks.passed} passed:")
                        checks.failed.forEach { System.err.println("  $it") }
                        1
                    }
                }
            }
        }
    }
    exitProcess(code)
}
