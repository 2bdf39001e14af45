// The program a new user writes against the Kotlin client, much like the README's example:
// run.sh builds it in a fresh Maven project and runs it against the vss-server at $VSS_URL
// (signature authentication): the basic calls, the encrypted store and LDK Node's layout,
// then two devices sharing a store through the change feed and a lease, then a move of a
// user's data to another user (export, import, delete); then it logs in with LNURL-auth at the issuer $VSS_LNURL_URL of the server
// at $VSS_LNURL_SERVER_URL (--lnurl-auth, signature and JWT authentication). It exits non-zero on any mismatch.
import com.connectrpc.Code
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import io.github.govss.vss.ChangeBatch
import io.github.govss.vss.Credentials
import io.github.govss.vss.DumpSummary
import io.github.govss.vss.EncryptedItem
import io.github.govss.vss.EncryptedStore
import io.github.govss.vss.ImportProgress
import io.github.govss.vss.LdkStore
import io.github.govss.vss.LeaseHeldException
import io.github.govss.vss.LeaseLostException
import io.github.govss.vss.LnurlAuth
import io.github.govss.vss.SignatureKey
import io.github.govss.vss.VerificationException
import io.github.govss.vss.VssClient
import io.github.govss.vss.VssClients
import io.github.govss.vss.keysFromWalletSeed
import io.github.govss.vss.signatureKeyFromWalletSeed
import io.github.govss.vss.vssError
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import vss.v1.Vss
import vss.v1.getChangeCursorRequest
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.listKeyVersionsRequest
import vss.v1.putObjectRequest
import java.io.File
import java.time.Duration
import kotlin.system.exitProcess

suspend fun main() {
    val url = System.getenv("VSS_URL") ?: error("VSS_URL is not set")
    val lnurlServer = System.getenv("VSS_LNURL_SERVER_URL") ?: error("VSS_LNURL_SERVER_URL is not set")
    val lnurlUrl = System.getenv("VSS_LNURL_URL") ?: error("VSS_LNURL_URL is not set")
    try {
        val identity = SignatureKey.generate()
        // The client is closed at the end of use, which stops its threads: the JVM then
        // exits as soon as main returns.
        VssClients.create(url, Credentials.signature(identity)).use { vss -> exercise(vss) }
        encryption(url)
        moveData(url)
        // Two devices of the same wallet: the change feed and a lease.
        VssClients.create(url, Credentials.signature(identity), deviceId = "phone").use { phone ->
            VssClients.create(url, Credentials.signature(identity), deviceId = "laptop").use { laptop ->
                multiDevice(phone, laptop)
            }
        }
        lnurlAuth(lnurlServer, lnurlUrl)
    } catch (e: Throwable) {
        e.printStackTrace()
        exitProcess(1)
    }
}

// exercise is what a program does with the client: a create, a conflict, a read, a
// blocking read, a listing.
suspend fun exercise(vss: VssClient) {
    val put = putObjectRequest {
        storeId = "wallet"
        transactionItems += keyValue { key = "greeting"; version = 0; value = ByteString.copyFromUtf8("hello") }
    }
    vss.putObjects(put).getOrThrow()
    val again = vss.putObjects(put)
    check(again is ResponseMessage.Failure && again.cause.code == Code.ABORTED) { "the same create again: $again, want ABORTED" }
    check(again.cause.vssError()?.errorCode == Vss.ErrorCode.CONFLICT_EXCEPTION) { "want CONFLICT_EXCEPTION, got ${again.cause.vssError()}" }
    val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "greeting" }).getOrThrow().value
    check(kv.version == 1L && kv.value.toStringUtf8() == "hello") { "got version ${kv.version}, value ${kv.value.toStringUtf8()}" }
    // The blocking twin, for Java and code without coroutines.
    val blocking = vss.getObjectBlocking(getObjectRequest { storeId = "wallet"; key = "greeting" }, emptyMap()).execute().getOrThrow()
    check(blocking.value.version == 1L) { "blocking get: version ${blocking.value.version}" }
    val all = vss.listAll(listKeyVersionsRequest { storeId = "wallet" })
    check(all.keyVersionsList.map { it.key } == listOf("greeting")) { "listAll: $all" }
    println("ok io.github.govss:vss-client: ${kv.key} v${kv.version}: ${kv.value.toStringUtf8()}")
}

// encryption stores through the encrypting layer with keys from a wallet seed, as the wallet's
// own user (LDK Node's signing key), checks that the server holds nothing readable and that a
// value it moves to another key is refused, then writes and reads LDK Node's layout.
suspend fun encryption(url: String) {
    val seed = ByteArray(64) { (it * 7).toByte() }
    val keys = keysFromWalletSeed(seed)
    VssClients.create(url, Credentials.signature(signatureKeyFromWalletSeed(seed))).use { vss ->
        val store = EncryptedStore(vss, keys)
        store.put("private", listOf(EncryptedItem("balance", "21 BTC".toByteArray(), 0), EncryptedItem("note", "secret".toByteArray(), 0)))
        store.put("private", "balance", "42 BTC".toByteArray(), 1)
        val balance = store.get("private", "balance")
        check(String(balance.value) == "42 BTC" && balance.version == 2L && balance.sealedVersion == 1L) { "get: ${String(balance.value)} v${balance.version}" }
        check(store.list("private").keyVersions.map { it.key }.sorted() == listOf("balance", "note")) { "list: ${store.list("private")}" }
        val raw = vss.listAll(listKeyVersionsRequest { storeId = "private" }).keyVersionsList
        check(raw.none { it.key.contains("balance") || it.key.contains("note") }) { "the server sees key names: $raw" }
        // The server moves one value to the other key: the read is refused, with no data.
        val moved = vss.getObject(getObjectRequest { storeId = "private"; key = store.storageKey("note") }).getOrThrow().value.value
        vss.putObjects(putObjectRequest {
            storeId = "private"
            transactionItems += keyValue { key = store.storageKey("balance"); version = 2; value = moved }
        }).getOrThrow()
        try {
            store.get("private", "balance")
            error("a value moved to another key was returned")
        } catch (e: VerificationException) {
            check(e.kind == VerificationException.Kind.AUTHENTICATION) { "want AUTHENTICATION, got $e" }
        }

        val ldk = LdkStore.open(vss, keys, "ldk-node")
        check(ldk.schema == LdkStore.Schema.V1) { "a new LDK store opened as ${ldk.schema}" }
        ldk.write("payments", "", "0123abcd", "a payment".toByteArray())
        val again = LdkStore.open(vss, keys, "ldk-node")
        check(again.schemaSource == LdkStore.SchemaSource.STORED) { "schema found by ${again.schemaSource}" }
        check(String(again.read("payments", "", "0123abcd")) == "a payment") { "LDK read" }
        val namespaces = again.listNamespaces().map { "${it.primaryNamespace}/${it.secondaryNamespace}: ${it.keys.map { k -> k.key }}" }
        check(namespaces == listOf("payments/: [0123abcd]")) { "LDK namespaces: $namespaces" }
    }
    println("ok encryption: EncryptedStore and LdkStore, a moved value refused")
}

// multiDevice follows a store on one device while the other writes under a lease.
suspend fun multiDevice(phone: VssClient, laptop: VssClient) = coroutineScope {
    val start = phone.getChangeCursor(getChangeCursorRequest { storeId = "shared" }).getOrThrow().cursor
    val batches = Channel<ChangeBatch>(Channel.UNLIMITED)
    val watch = launch { phone.watchChanges("shared", start, includeValues = true).collect { batches.send(it) } }
    withTimeout(10_000) { batches.receive() } // open and caught up

    val lease = laptop.acquireLease("shared", "node", ttl = Duration.ofSeconds(10))
    try {
        phone.acquireLease("shared", "node", ttl = Duration.ofSeconds(10)).close()
        error("the phone got a lease the laptop holds")
    } catch (e: LeaseHeldException) {
        check(e.lease.holder == "laptop") { "LeaseHeldException names ${e.lease.holder}" }
    }
    lease.putObjects(putObjectRequest {
        storeId = "shared"
        transactionItems += keyValue { key = "monitor"; version = 0; value = ByteString.copyFromUtf8("m1") }
    }).getOrThrow()
    val change = withTimeout(10_000) {
        var got: Vss.Change? = null
        while (got == null) got = batches.receive().changes.firstOrNull()
        got
    }
    check(change.key == "monitor" && change.deviceId == "laptop" && change.value.toStringUtf8() == "m1") { "watched $change" }
    watch.cancel()

    check(lease.release()) { "release ended nothing" }
    try {
        lease.putObjects(putObjectRequest { storeId = "shared"; transactionItems += keyValue { key = "late"; version = -1 } })
        error("a released lease wrote")
    } catch (_: LeaseLostException) {
    }
    val pages = phone.listChanges("shared", start).toList()
    check(pages.flatMap { it.changes }.map { it.key } == listOf("monitor")) { "listed $pages" }
    println("ok change feed and lease: ${change.key} by ${change.deviceId}")
}

// moveData exports one user's stores to a file, imports the file for another user in small
// chunks, checks the checksums and the data, then deletes the first user's data.
suspend fun moveData(url: String) {
    val file = File.createTempFile("vss-move", ".vssdump")
    try {
        val from = SignatureKey.generate()
        val exported = VssClients.create(url, Credentials.signature(from)).use { old ->
            old.putObjects(putObjectRequest {
                storeId = "wallet"
                globalVersion = 0
                transactionItems += keyValue { key = "a"; version = 0; value = ByteString.copyFromUtf8("1") }
                transactionItems += keyValue { key = "b"; version = 0; value = ByteString.copyFromUtf8("2".repeat(20_000)) }
            }).getOrThrow()
            file.outputStream().use { old.exportData(it) }
        }
        check(exported.stores == 1L && exported.entries == 2L && exported.bytes == file.length()) { "exported $exported" }
        VssClients.create(url, Credentials.signature(SignatureKey.generate())).use { new ->
            val steps = mutableListOf<ImportProgress>()
            val imported: DumpSummary = new.importData(file, "move", chunkBytes = 4096) { steps += it }
            check(imported == exported) { "imported $imported, exported $exported" }
            check(steps.size >= 2 && steps.last().committedBytes == file.length()) { "progress $steps" }
            val keys = new.listAll(listKeyVersionsRequest { storeId = "wallet" })
            check(keys.keyVersionsList.map { "${it.key}@${it.version}" } == listOf("b@1", "a@1") && keys.globalVersion == 1L) { "imported keys: $keys" }
        }
        VssClients.create(url, Credentials.signature(from)).use { old ->
            val dry = old.deleteStore("wallet", dryRun = true)
            check(!dry.deleted && dry.keys == 3L) { "dry run: $dry" }
            check(old.deleteAllData().deleted)
            check(old.deleteAllData(dryRun = true).stores == 0L) { "data left after deleteAllData" }
        }
        println("ok move: ${exported.stores} store, ${exported.entries} keys, sha256 ${exported.sha256Hex.take(16)}…")
    } finally {
        file.delete()
    }
}

// lnurlAuth logs in with LNURL-auth at the server's own issuer, then reads what it wrote with
// the signature of the same key: the same user.
suspend fun lnurlAuth(baseUrl: String, issuerUrl: String) {
    val linkingKey = SignatureKey.generate()
    val auth: LnurlAuth = Credentials.lnurlAuth(issuerUrl, linkingKey)
    VssClients.create(baseUrl, auth).use { vss ->
        vss.putObjects(putObjectRequest {
            storeId = "wallet"
            transactionItems += keyValue { key = "lnurl"; version = 0; value = ByteString.copyFromUtf8("logged in") }
        }).getOrThrow()
        val blocking = vss.getObjectBlocking(getObjectRequest { storeId = "wallet"; key = "lnurl" }, emptyMap()).execute().getOrThrow()
        check(blocking.value.value.toStringUtf8() == "logged in") { "LNURL-auth blocking get: ${blocking.value}" }
    }
    val token = auth.token()
    check(token.count { it == '.' } == 2) { "the token is not a JWT: $token" }
    VssClients.create(baseUrl, Credentials.signature(linkingKey)).use { vss ->
        val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "lnurl" }).getOrThrow().value
        check(kv.value.toStringUtf8() == "logged in") { "the signature user of the linking key reads ${kv.value.toStringUtf8()}" }
    }
    check(auth.token() == token) { "the token was not kept" }
    println("ok LNURL-auth: the linking key's user ${linkingKey.publicKeyHex.take(12)}…")
}
