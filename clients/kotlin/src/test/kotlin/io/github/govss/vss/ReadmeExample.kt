package io.github.govss.vss

// The example of README.md, word for word but for the server's URL, so that it stays true.

import com.connectrpc.getOrThrow
import com.google.protobuf.ByteString
import vss.v1.getObjectRequest
import vss.v1.keyValue
import vss.v1.putObjectRequest

suspend fun readmeExample(serverUrl: String): String {
    val identity = SignatureKey.generate() // keep identity.secretKey: the data belongs to this key
    VssClients.create(serverUrl, Credentials.signature(identity)).use { vss ->
        vss.putObjects(putObjectRequest {
            storeId = "wallet"
            transactionItems += keyValue { key = "greeting"; version = 0; value = ByteString.copyFromUtf8("hello") }
        }).getOrThrow()
        val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "greeting" }).getOrThrow().value
        return "${kv.key} v${kv.version}: ${kv.value.toStringUtf8()}"
    }
}

// The LNURL-auth example of README.md, with the URLs as parameters and a read to check it.
suspend fun readmeLnurlExample(issuerUrl: String, serverUrl: String): String {
    val linkingKey = SignatureKey.generate() // the user is its public key, as with Credentials.signature
    val auth = Credentials.lnurlAuth(issuerUrl, linkingKey)
    VssClients.create(serverUrl, auth).use { vss ->
        vss.putObjects(putObjectRequest {
            storeId = "wallet"
            transactionItems += keyValue { key = "greeting"; version = 0; value = ByteString.copyFromUtf8("hello") }
        }).getOrThrow()
        val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "greeting" }).getOrThrow().value
        return "${kv.key} v${kv.version}: ${kv.value.toStringUtf8()}"
    }
}
