package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.getOrThrow
import com.connectrpc.protocols.NetworkProtocol
import com.google.protobuf.ByteString
import kotlinx.coroutines.Job
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import okhttp3.OkHttpClient
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource
import vss.v1.Vss
import vss.v1.deleteObjectRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.io.ByteArrayInputStream
import java.io.ByteArrayOutputStream
import java.io.File
import java.io.IOException
import java.io.OutputStream
import java.nio.file.Files
import java.time.Duration
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue

/**
 * DataTransferTest moves a wallet's data between users of a real vss-server (in-memory
 * store) with the client's exportData and importData: round trips in small chunks from a
 * file and from a stream over every protocol, imports cancelled and resumed, carried
 * through a broken connection and through a lost answer, bad dumps refused without a trace,
 * aborts, and the guarded deletes with their dry runs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DataTransferTest {
    /** Protocol is one way of reaching the service, with binary protobuf or JSON. */
    enum class Protocol(val protocol: NetworkProtocol, val json: Boolean) {
        CONNECT_PROTO(NetworkProtocol.CONNECT, false),
        CONNECT_JSON(NetworkProtocol.CONNECT, true),
        GRPC_WEB_PROTO(NetworkProtocol.GRPC_WEB, false),
        GRPC_WEB_JSON(NetworkProtocol.GRPC_WEB, true),
        GRPC_PROTO(NetworkProtocol.GRPC, false),
        GRPC_JSON(NetworkProtocol.GRPC, true),
    }

    private lateinit var server: VssServer
    private val clients = Collections.synchronizedList(mutableListOf<VssClient>())
    private val http = Collections.synchronizedList(mutableListOf<OkHttpClient>())
    private val files = Collections.synchronizedList(mutableListOf<File>())

    /** Retries quickly and patiently, so that the tests do not wait for long backoffs. */
    private val patient = RetryPolicy(maxAttempts = 30, initialBackoff = Duration.ofMillis(50), maxBackoff = Duration.ofMillis(200))

    @BeforeAll
    fun startServer() {
        server = VssServer.start(listOf("--auth", "signature"))
    }

    @AfterAll
    fun stopServer() {
        clients.forEach { it.close() }
        http.forEach { it.dispatcher.executorService.shutdown(); it.connectionPool.evictAll() }
        files.forEach { it.delete() }
        server.close()
    }

    /** Returns a client of a new user (or of [key]'s) over [protocol]. */
    private fun client(
        protocol: Protocol = Protocol.CONNECT_PROTO,
        key: SignatureKey = SignatureKey.generate(),
        url: String = server.baseUrl,
        retry: RetryPolicy = RetryPolicy.DEFAULT,
        httpClient: OkHttpClient? = null,
    ): VssClient = VssClients.create(url, Credentials.signature(key), protocol = protocol.protocol, json = protocol.json, retry = retry, httpClient = httpClient)
        .also { clients += it }

    private fun kv(key: String, version: Long, value: String = "") = keyValue {
        this.key = key
        this.version = version
        this.value = ByteString.copyFromUtf8(value)
    }

    private suspend fun VssClient.put(store: String, vararg items: Vss.KeyValue, globalVersion: Long? = null) {
        putObjects(
            putObjectRequest {
                storeId = store
                globalVersion?.let { this.globalVersion = it }
                transactionItems += items.toList()
            },
        ).getOrThrow()
    }

    /**
     * Writes what a dump must carry (as the server's conformance test does): an empty store
     * id, a global version, versions above 1, a key deleted and created again (which moves it
     * in the listing order), and a value far larger than the import chunks; with [many], a
     * third store of 100 small keys, which takes many chunks.
     */
    private suspend fun writeWallet(vss: VssClient, many: Boolean = false) {
        vss.put("", kv("only", 0, "x"))
        vss.put("wallet", kv("monitors/a", 0, "a0"), kv("monitors/b", 0, "b0"), kv("manager", 0, "m0"), globalVersion = 0)
        vss.put("wallet", kv("monitors/a", 1, "a1"), globalVersion = 1)
        vss.put("wallet", kv("monitors/a", 2, "a2"), kv("big", 0, BIG))
        vss.deleteObject(deleteObjectRequest { storeId = "wallet"; keyValue = kv("monitors/b", 1) }).getOrThrow()
        vss.put("wallet", kv("monitors/b", 0, "b-again"), kv("payments/1", -1, "p"))
        if (many) vss.put("many", *Array(100) { kv("k/%03d".format(it), 0, "m".repeat(200)) })
    }

    /** A store's keys with their versions in the server's listing order, its global version first. */
    private suspend fun listing(vss: VssClient, store: String): List<String> {
        val all = vss.listAll(listKeyVersionsRequest { storeId = store; pageSize = 2 })
        val gv = if (all.hasGlobalVersion()) listOf("global_version@${all.globalVersion}") else emptyList()
        return gv + all.keyVersionsList.map { "${it.key}@${it.version}" }
    }

    private suspend fun export(vss: VssClient): Pair<ByteArray, DumpSummary> {
        val out = ByteArrayOutputStream()
        val summary = vss.exportData(out)
        return out.toByteArray() to summary
    }

    private fun tempFile(bytes: ByteArray): File =
        Files.createTempFile("vss-dump", ".vssdump").toFile().also { files += it; it.writeBytes(bytes) }

    private suspend fun assertSameData(source: VssClient, target: VssClient) {
        for (store in listOf("", "wallet", "many")) {
            assertEquals(listing(source, store), listing(target, store), "listing of store \"$store\"")
        }
        val big = target.getObject(getObjectRequest { storeId = "wallet"; key = "big" }).getOrThrow().value
        assertEquals(BIG, big.value.toStringUtf8())
        assertEquals(1, big.version)
    }

    private suspend fun expectFailure(code: Code, call: suspend () -> Unit): ConnectException {
        val e = assertFailsWith<ConnectException> { call() }
        assertEquals(code, e.code, "code of $e (server log:\n${server.log()})")
        return e
    }

    /**
     * Starts an import of [file] by [vss] in 4 KiB chunks and cancels it after the first
     * answer: the server then holds the first store and the first keys of the second.
     */
    private suspend fun interruptedImport(vss: VssClient, file: File, importId: String) = coroutineScope {
        lateinit var job: Job
        var answers = 0
        var committed = 0L
        job = launch {
            vss.importData(file, importId, chunkBytes = 4096, onProgress = { p ->
                committed = p.committedBytes
                if (++answers == 1) job.cancel()
            })
        }
        job.join()
        assertTrue(job.isCancelled, "the import was cancelled")
        assertTrue(committed in 1 until file.length(), "cancelled mid-way: committed $committed of ${file.length()}")
    }

    @ParameterizedTest
    @EnumSource(Protocol::class)
    fun `a dump moves a user's stores to another user in small chunks, from a file and from a stream`(protocol: Protocol) = runBlocking<Unit> {
        val alice = client(protocol)
        writeWallet(alice, many = true)
        val written = mutableListOf<Long>()
        val out = ByteArrayOutputStream()
        val exported = alice.exportData(out, onProgress = { written += it })
        val dump = out.toByteArray()
        assertEquals(dump.size.toLong(), exported.bytes)
        assertEquals(3, exported.stores)
        assertEquals(106, exported.entries)
        assertEquals(32, exported.sha256.size())
        assertContentEquals(DumpScanner.MAGIC, dump.copyOf(12))
        assertEquals(exported.bytes, written.last())

        // From a file, in chunks far smaller than the 300 KiB value (the server asks for it
        // whole) and than the store of 100 keys.
        val bob = client(protocol)
        val steps = mutableListOf<ImportProgress>()
        val imported = bob.importData(tempFile(dump), "move-file", chunkBytes = 1000, onProgress = { steps += it })
        assertEquals(exported, imported)
        assertTrue(steps.size > 15, "many chunks: $steps")
        assertEquals(steps.map { it.committedBytes }.sorted(), steps.map { it.committedBytes }, "the committed offset only grows")
        assertTrue(steps.all { it.totalBytes == exported.bytes })
        assertEquals(ImportProgress(exported.bytes, exported.bytes, exported.stores, exported.entries), steps.last())
        assertEquals(exported.sha256, export(bob).second.sha256, "the target exports the source's checksum")
        assertSameData(alice, bob)

        // From a stream, into a third user.
        val carol = client(protocol)
        val fromStream = carol.importData(ByteArrayInputStream(dump), "move-stream", chunkBytes = 777)
        assertEquals(exported, fromStream)
        assertSameData(alice, carol)
    }

    @ParameterizedTest
    @EnumSource(Protocol::class, names = ["CONNECT_PROTO", "GRPC_WEB_PROTO"])
    fun `an import cancelled mid-way resumes where it stopped when called again`(protocol: Protocol) = runBlocking<Unit> {
        val alice = client(protocol)
        writeWallet(alice)
        val (dump, exported) = export(alice)
        val file = tempFile(dump)

        val bob = client(protocol)
        interruptedImport(bob, file, "resume")
        val partial = export(bob).second
        assertNotEquals(exported.sha256, partial.sha256, "the cancelled import is not complete")

        // Another import cannot take the stores this one is writing, and leaves them alone.
        expectFailure(Code.FAILED_PRECONDITION) { bob.importData(file, "another") }

        // Called again with the same id, from a new export of the same data and as a stream
        // this time: the server skips what it committed and writes the rest.
        val (again, _) = export(alice)
        val resumed = bob.importData(ByteArrayInputStream(again), "resume", chunkBytes = 64 * 1024)
        assertEquals(exported.sha256, resumed.sha256)
        assertEquals(exported.stores, resumed.stores)
        assertEquals(exported.entries, resumed.entries)
        assertEquals(exported.sha256, export(bob).second.sha256)
        assertSameData(alice, bob)

        // Done: the same dump again is refused (the stores are no longer empty), changing nothing.
        expectFailure(Code.FAILED_PRECONDITION) { bob.importData(file, "resume") }
        assertEquals(exported.sha256, export(bob).second.sha256)
    }

    @Test
    fun `retries carry an export and an import through a broken connection`() = runBlocking<Unit> {
        TcpProxy(server.address).use { proxy ->
            val key = SignatureKey.generate()
            val alice = client(key = key)
            writeWallet(alice, many = true)
            val (dump, exported) = export(alice)

            // Refused for a while before the export starts: opened again.
            val viaProxy = client(key = key, url = proxy.baseUrl, retry = patient)
            proxy.down = true
            val up = Thread { Thread.sleep(500); proxy.down = false }.apply { start() }
            assertEquals(exported.sha256, viaProxy.exportData(OutputStream.nullOutputStream()).sha256)
            up.join()

            // Cut, and refused for a while, in the middle of an import: each chunk is sent again.
            val sent = ConcurrentHashMap<String, AtomicInteger>()
            val counting = OkHttpClient.Builder().addInterceptor { chain ->
                sent.computeIfAbsent(chain.request().url.encodedPath.substringAfterLast('/')) { AtomicInteger() }.incrementAndGet()
                chain.proceed(chain.request())
            }.build().also { http += it }
            val bob = client(url = proxy.baseUrl, retry = patient, httpClient = counting)
            var answers = 0
            val imported = bob.importData(tempFile(dump), "through-cuts", chunkBytes = 1000, onProgress = {
                if (++answers == 5) {
                    proxy.down = true
                    proxy.cut()
                    Thread { Thread.sleep(500); proxy.down = false }.start()
                }
            })
            assertEquals(exported, imported)
            assertTrue(sent.getValue("ImportData").get() > answers, "chunks were sent again: $sent, $answers answers")
            assertSameData(alice, bob)
        }
    }

    @Test
    fun `an import whose last answer was lost is found complete`() = runBlocking<Unit> {
        val alice = client()
        writeWallet(alice)
        val (dump, exported) = export(alice)

        // The answer to the chunk that ends the dump is lost once, after the server applied it:
        // sent again, it finds no import in progress, and the target's export tells it completed.
        val loseLast = AtomicBoolean(true)
        val lost = OkHttpClient.Builder().addInterceptor { chain ->
            val request = chain.request()
            if (request.url.encodedPath.endsWith("/ImportData") && loseLast.get()) {
                val body = okio.Buffer().also { request.body!!.writeTo(it) }.readByteArray()
                if (Vss.ImportDataRequest.parseFrom(body).last && loseLast.compareAndSet(true, false)) {
                    chain.proceed(request).close()
                    throw IOException("the answer was lost")
                }
            }
            chain.proceed(request)
        }.build().also { http += it }
        val bob = client(retry = patient, httpClient = lost)
        val imported = bob.importData(tempFile(dump), "lost-answer", chunkBytes = 4096)
        assertFalse(loseLast.get(), "the last answer was lost")
        assertEquals(exported, imported)
        assertSameData(alice, bob)
    }

    @ParameterizedTest
    @EnumSource(Protocol::class, names = ["CONNECT_PROTO", "GRPC_WEB_PROTO"])
    fun `a bad dump is refused and leaves nothing behind`(protocol: Protocol) = runBlocking<Unit> {
        val alice = client(protocol)
        writeWallet(alice)
        val (dump, _) = export(alice)
        val flipped = dump.copyOf().also { d ->
            val big = String(d, Charsets.ISO_8859_1).indexOf("vvvvvvvv")
            d[big + 1000] = (d[big + 1000].toInt() xor 0x10).toByte() // inside the large value
        }
        val cases = listOf(
            Triple("a flipped byte", flipped, "checksum mismatch"),
            Triple("a truncated dump", dump.copyOf(dump.size - 10), "truncated"),
            Triple("not a dump", "PK\u0003\u0004 a zip file".toByteArray(), "not a VSS dump"),
        )
        for ((name, data, reason) in cases) {
            val bob = client(protocol)
            val steps = mutableListOf<ImportProgress>()
            val e = expectFailure(Code.INVALID_ARGUMENT) { bob.importData(tempFile(data), "bad", chunkBytes = 4096, onProgress = { steps += it }) }
            assertTrue(e.message.orEmpty().contains(reason), "$name: ${e.message}")
            val left = export(bob).second
            assertEquals(0, left.stores, "$name: stores left behind")
            if (name == "a flipped byte") assertTrue(steps.any { it.stores >= 1 }, "the first store was written before the bad one was found: $steps")
        }

        // A store that is not empty: refused, what the import wrote is removed, the store kept.
        val bob = client(protocol)
        bob.put("wallet", kv("mine", 0, "keep me"))
        val e = expectFailure(Code.FAILED_PRECONDITION) { bob.importData(ByteArrayInputStream(dump), "into-mine", chunkBytes = 4096) }
        assertTrue(e.message.orEmpty().contains("not empty"), e.message)
        assertEquals(listOf("global_version@0", "mine@1"), listing(bob, "wallet"))
        assertEquals(listOf("global_version@0"), listing(bob, ""), "the store the import wrote first is removed")
    }

    @Test
    fun `abortImport removes what an interrupted import wrote`() = runBlocking<Unit> {
        val alice = client()
        writeWallet(alice)
        val (dump, exported) = export(alice)
        val file = tempFile(dump)
        val bob = client()
        interruptedImport(bob, file, "to-abort")
        assertTrue(export(bob).second.stores >= 1, "the interrupted import wrote something")

        bob.abortImport("to-abort")
        assertEquals(0, export(bob).second.stores, "nothing left after the abort")
        bob.abortImport("to-abort") // an import the server does not know: nothing happens
        // The same id starts over.
        assertEquals(exported, bob.importData(file, "to-abort"))
        assertSameData(alice, bob)
    }

    @ParameterizedTest
    @EnumSource(Protocol::class, names = ["CONNECT_PROTO", "GRPC_WEB_PROTO", "GRPC_PROTO"])
    fun `deleteStore and deleteAllData report on a dry run and delete otherwise`(protocol: Protocol) = runBlocking<Unit> {
        val alice = client(protocol)
        writeWallet(alice)
        val carol = client(protocol)
        writeWallet(carol)
        val before = listing(alice, "wallet")

        val dry = alice.deleteStore("wallet", dryRun = true)
        assertEquals(6, dry.keys, "five keys and the global version")
        assertTrue(dry.bytes > BIG.length)
        assertFalse(dry.deleted)
        assertEquals(before, listing(alice, "wallet"), "a dry run deletes nothing")

        val deleted = alice.deleteStore("wallet")
        assertTrue(deleted.deleted)
        assertEquals(dry.keys, deleted.keys)
        assertEquals(dry.bytes, deleted.bytes)
        assertEquals(listOf("global_version@0"), listing(alice, "wallet"), "the store is gone")
        assertEquals(listOf("global_version@0", "only@1"), listing(alice, ""), "the user's other store is kept")

        val allDry = alice.deleteAllData(dryRun = true)
        assertEquals(1, allDry.stores)
        assertEquals(1, allDry.keys)
        assertFalse(allDry.deleted)
        assertEquals(listOf("global_version@0", "only@1"), listing(alice, ""))

        val all = alice.deleteAllData()
        assertTrue(all.deleted)
        assertEquals(1, all.keys)
        assertEquals(0, export(alice).second.stores, "nothing left after deleteAllData")
        val others = export(carol).second
        assertEquals(2, others.stores, "another user's data is untouched")
        assertEquals(6, others.entries)
    }

    @Test
    fun `the README's example moves a wallet and deletes it at the old provider`() = runBlocking<Unit> {
        val oldKey = SignatureKey.generate()
        val old = client(key = oldKey)
        writeWallet(old)
        val before = listOf("", "wallet").associateWith { listing(old, it) }
        val newKey = SignatureKey.generate()
        val dir = Files.createTempDirectory("vss-move").toFile()
        try {
            val printed = readmeMoveExample(server.baseUrl, Credentials.signature(oldKey), server.baseUrl, Credentials.signature(newKey), dir)
            assertEquals("exported 2 stores, 6 keys", printed.first())
            val size = File(dir, "wallet.vssdump").length()
            assertEquals("imported $size of $size bytes", printed[1], "one chunk of 1 MiB: $printed")
            assertTrue(printed.last().startsWith("deleting 2 stores, 7 keys, "), printed.last())
            assertEquals(0, export(old).second.stores, "deleted at the old provider")
            val new = client(key = newKey)
            assertEquals(before, listOf("", "wallet").associateWith { listing(new, it) }, "the new provider lists what the old one did")
            assertEquals(BIG, new.getObject(getObjectRequest { storeId = "wallet"; key = "big" }).getOrThrow().value.value.toStringUtf8())
        } finally {
            dir.deleteRecursively()
        }
    }

    @Test
    fun `the dump scanner checks the framing and the trailer`() = runBlocking<Unit> {
        val alice = client()
        writeWallet(alice)
        val (dump, exported) = export(alice)
        // Fed a byte at a time, it finds the same trailer.
        val scanner = DumpScanner()
        for (i in dump.indices) scanner.feed(dump, i, i + 1)
        val trailer = scanner.finish()
        assertEquals(exported.sha256, trailer.sha256)
        assertEquals(exported.stores, trailer.stores)
        assertEquals(exported.entries, trailer.entries)

        fun scan(bytes: ByteArray) = assertFailsWith<ConnectException> { DumpScanner().apply { feed(bytes, 0, bytes.size) }.finish() }.also { assertEquals(Code.DATA_LOSS, it.code) }
        scan(dump.copyOf(dump.size - 1))
        scan(dump + byteArrayOf(0))
        scan("not a dump at all".toByteArray())
        scan(ByteArray(0))
    }

    private companion object {
        val BIG = "v".repeat(300 shl 10)
    }
}
