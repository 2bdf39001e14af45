// The program a new user writes against the Kotlin client, much like the README's example:
// run.sh builds it in a fresh Maven project and runs it against the vss-server at $VSS_URL
// (signature authentication). It exits non-zero on any mismatch.
import com.connectrpc.Code
import com.connectrpc.ResponseMessage
import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import io.github.govss.vss.Credentials
import io.github.govss.vss.SignatureKey
import io.github.govss.vss.VssClient
import io.github.govss.vss.VssClients
import io.github.govss.vss.vssError
import vss.v1.Vss
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.putObjectRequest
import kotlin.system.exitProcess

suspend fun main() {
    val url = System.getenv("VSS_URL") ?: error("VSS_URL is not set")
    try {
        val identity = SignatureKey.generate()
        // The client is closed at the end of use, which stops its threads: the JVM then
        // exits as soon as main returns.
        VssClients.create(url, Credentials.signature(identity)).use { vss -> exercise(vss) }
    } catch (e: Throwable) {
        e.printStackTrace()
        exitProcess(1)
    }
}

// exercise is what a program does with the client: a create, a conflict, a read, a
// blocking read.
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
    println("ok io.github.govss:vss-client: ${kv.key} v${kv.version}: ${kv.value.toStringUtf8()}")
}
