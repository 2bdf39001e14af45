package io.github.govss.vss

import okhttp3.OkHttpClient
import okhttp3.Request
import java.io.File
import java.io.IOException
import java.net.InetAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/**
 * VssServer runs the real bin/vss-server on a loopback port the kernel picks, with an
 * in-memory store, for the length of a test class. The binary's path comes from the
 * system property `vss.server.bin` (`make test-kotlin` sets it).
 */
class VssServer private constructor(
    private val process: Process,
    private val shutdownHook: Thread,
    private val log: StringBuffer,
    private val dir: Path,
    /** The server's root URL, for example `http://127.0.0.1:41234`. */
    val baseUrl: String,
) : AutoCloseable {
    /** The address the server listens on, `127.0.0.1:port`. */
    val address: String get() = baseUrl.removePrefix("http://")

    /**
     * The LNURL-auth issuer's URL, `http://localhost:port/auth/lnurl`, for a server started by
     * [startLnurlAuth].
     */
    val lnurl: String get() = "http://localhost:${address.substringAfterLast(':')}/auth/lnurl"

    /** Everything the server has printed so far. */
    fun log(): String = log.toString()

    /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its files. */
    override fun close() {
        runCatching { Runtime.getRuntime().removeShutdownHook(shutdownHook) }
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor(10, TimeUnit.SECONDS)
        }
        dir.toFile().deleteRecursively()
    }

    companion object {
        private val SERVING = Regex("""msg="serving VSS" addr=(\S+)""")

        /**
         * Starts the server with [args] added to `--listen` [listen] and [database] (an
         * in-memory store unless told otherwise), and returns once GET /healthz answers 200.
         * [files] are written to a temporary directory first; `{name}` in an argument is
         * replaced by the path of file `name`.
         */
        @JvmStatic
        @JvmOverloads
        fun start(
            args: List<String>,
            files: Map<String, String> = emptyMap(),
            listen: String = "127.0.0.1:0",
            database: List<String> = listOf("--database-url", "memory:"),
        ): VssServer {
            val bin = System.getProperty("vss.server.bin")
                ?: error("system property vss.server.bin is not set: run `make test-kotlin`, or mvn verify -Dvss.server.bin=/path/to/bin/vss-server")
            check(File(bin).canExecute()) { "vss.server.bin=$bin is not an executable file: run `make build` first" }

            val dir = Files.createTempDirectory("vss-kotlin-test")
            val paths = files.mapValues { (name, content) -> dir.resolve(name).also { Files.writeString(it, content) } }
            val expanded = args.map { arg -> paths.entries.fold(arg) { a, (name, path) -> a.replace("{$name}", path.toString()) } }
            val command = listOf(bin, "--listen", listen) + database + expanded
            val process = ProcessBuilder(command).redirectErrorStream(true).start()
            // If the test JVM ends without closing the server, do not leave it running.
            val shutdownHook = Thread { process.destroyForcibly() }
            Runtime.getRuntime().addShutdownHook(shutdownHook)

            // Drain the output for the whole life of the process, and catch the address line.
            val log = StringBuffer()
            val address = CompletableFuture<String>()
            Thread({
                try {
                    process.inputStream.bufferedReader().forEachLine { line ->
                        log.append(line).append('\n')
                        SERVING.find(line)?.let { address.complete(it.groupValues[1]) }
                    }
                } catch (_: IOException) {
                    // The stream closes when the process ends.
                }
                address.completeExceptionally(IllegalStateException("vss-server exited before it served"))
            }, "vss-server-output").apply { isDaemon = true }.start()

            try {
                val addr = address.get(30, TimeUnit.SECONDS)
                val baseUrl = "http://$addr"
                waitHealthy(baseUrl, process)
                return VssServer(process, shutdownHook, log, dir, baseUrl)
            } catch (e: Exception) {
                runCatching { Runtime.getRuntime().removeShutdownHook(shutdownHook) }
                process.destroyForcibly()
                dir.toFile().deleteRecursively()
                throw IllegalStateException("vss-server did not start (${e.message}); command: $command; its output:\n$log", e)
            }
        }

        /**
         * Starts the server with its LNURL-auth issuer (`--lnurl-auth`) and [args]. The
         * issuer's public URL must lead back to the server, so the port is chosen before the
         * server starts: one the kernel names free, and another if the server cannot listen on
         * it after all. The public URL names `localhost`, a domain name, as vss-client-ng
         * requires.
         */
        @JvmStatic
        fun startLnurlAuth(args: List<String>): VssServer {
            var failure: Exception? = null
            repeat(5) {
                val port = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
                try {
                    return start(args + listOf("--lnurl-auth", "--public-url", "http://localhost:$port"), listen = "127.0.0.1:$port")
                } catch (e: IllegalStateException) {
                    if (e.message?.contains("address already in use") != true) throw e
                    failure = e
                }
            }
            throw failure!!
        }

        private fun waitHealthy(baseUrl: String, process: Process) {
            val http = OkHttpClient.Builder().callTimeout(1, TimeUnit.SECONDS).build()
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
            while (System.nanoTime() < deadline) {
                check(process.isAlive) { "vss-server exited with status ${process.exitValue()}" }
                try {
                    http.newCall(Request.Builder().url("$baseUrl/healthz").build()).execute().use { resp ->
                        if (resp.code == 200) return
                    }
                } catch (_: IOException) {
                    // Not listening yet.
                }
                Thread.sleep(50)
            }
            error("GET $baseUrl/healthz did not answer 200 within 30 s")
        }
    }
}
