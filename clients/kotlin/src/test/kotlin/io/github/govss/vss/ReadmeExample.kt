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

// The encryption example of README.md, with the URL and the seed as parameters, and what it
// prints returned instead.
suspend fun readmeEncryptionExample(serverUrl: String, seed: ByteArray): List<String> {
    val printed = mutableListOf<String>()
    fun println(line: String) { printed += line }
    val keys = keysFromWalletSeed(seed) // LDK Node's derivation: m/877', then HMAC-SHA256
    VssClients.create(serverUrl, Credentials.signature(signatureKeyFromWalletSeed(seed))).use { vss ->
        val store = EncryptedStore(vss, keys)
        store.put("wallet", "greeting", "hello".toByteArray(), version = 0) // the server sees neither key nor value
        val got = store.get("wallet", "greeting") // verified, or a VerificationException
        println("${got.key} v${got.version}: ${String(got.value)}") // greeting v1: hello

        // The store of an LDK Node wallet with the same seed: namespaces and keys in clear.
        val ldk = LdkStore.open(vss, keys, "ldk-node") // finds the schema (V0 or V1) as LDK Node does
        for (ns in ldk.listNamespaces()) {
            for (k in ns.keys) {
                val value = ldk.read(ns.primaryNamespace, ns.secondaryNamespace, k.key) // decrypted and verified
                println("${ns.primaryNamespace}/${ns.secondaryNamespace}/${k.key}: ${value.size} bytes")
            }
        }
    }
    return printed
}

// The example of README.md that moves a wallet's data, with the providers' URLs, the
// credentials and the directory as parameters, and what it prints returned instead.
suspend fun readmeMoveExample(oldUrl: String, oldCredentials: Credentials, newUrl: String, newCredentials: Credentials, dir: java.io.File): List<String> {
    val printed = mutableListOf<String>()
    fun println(line: String) { printed += line }
    // At the old provider: the whole dump, to a file.
    val file = java.io.File(dir, "wallet.vssdump")
    val exported = VssClients.create(oldUrl, oldCredentials).use { old ->
        file.outputStream().use { out -> old.exportData(out) }
    }
    println("exported ${exported.stores} stores, ${exported.entries} keys")

    // At the new provider: the same id resumes an interrupted import.
    VssClients.create(newUrl, newCredentials).use { new ->
        val imported = new.importData(file, importId = "move-" + exported.sha256Hex.take(16)) { p ->
            println("imported ${p.committedBytes} of ${p.totalBytes} bytes")
        }
        check(imported.sha256 == exported.sha256) // the new provider holds what the old one did
    }

    // Then, and only then, delete it at the old provider.
    VssClients.create(oldUrl, oldCredentials).use { old ->
        val dry = old.deleteAllData(dryRun = true)
        println("deleting ${dry.stores} stores, ${dry.keys} keys, ${dry.bytes} bytes")
        old.deleteAllData()
    }
    return printed
}
