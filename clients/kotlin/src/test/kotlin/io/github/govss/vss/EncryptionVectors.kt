package io.github.govss.vss

import com.google.gson.JsonArray
import com.google.gson.JsonElement
import com.google.gson.JsonObject
import com.google.gson.JsonParser
import java.io.File

/**
 * EncryptionVectors loads compat/rust-client/encryption-vectors.json, the known answers the
 * real vss-client-ng and LDK Node derivation produce (layout: ENCRYPTION-VECTORS.md beside
 * it). Its path is the system property `vss.encryption.vectors` (the POM sets it for the
 * tests) or the environment variable `VSS_ENCRYPTION_VECTORS` (the cross-language test).
 */
object EncryptionVectors {
    /** The whole file. */
    val doc: JsonObject by lazy { load() }

    private fun load(): JsonObject {
        val path = System.getProperty("vss.encryption.vectors") ?: System.getenv("VSS_ENCRYPTION_VECTORS")
            ?: error("set the system property vss.encryption.vectors or VSS_ENCRYPTION_VECTORS to compat/rust-client/encryption-vectors.json")
        val file = File(path)
        check(file.isFile) { "encryption vectors $path: no such file" }
        return JsonParser.parseString(file.readText()).asJsonObject
    }
}

/** Returns member [name], failing when it is absent. */
fun JsonObject.member(name: String): JsonElement = get(name) ?: error("vectors: no member $name in $this")

/** Returns the string member [name]. */
fun JsonObject.str(name: String): String = member(name).asString

/** Returns the string member [name], or null when it is absent or null. */
fun JsonObject.strOrNull(name: String): String? = get(name)?.takeUnless { it.isJsonNull }?.asString

/** Returns the integer member [name], exactly (versions reach i64::MAX). */
fun JsonObject.long(name: String): Long = member(name).asJsonPrimitive.asString.toLong()

/** Returns the hex member [name] as bytes. */
fun JsonObject.hex(name: String): ByteArray = unhex(str(name))

/** Returns the object member [name]. */
fun JsonObject.obj(name: String): JsonObject = member(name).asJsonObject

/** Returns the array member [name] as objects. */
fun JsonObject.objects(name: String): List<JsonObject> = (member(name) as JsonArray).map { it.asJsonObject }

/** Returns the array member [name] as strings. */
fun JsonObject.strings(name: String): List<String> = (member(name) as JsonArray).map { it.asString }

/** Decodes lowercase or uppercase hex. */
fun unhex(hex: String): ByteArray {
    require(hex.length % 2 == 0) { "odd hex length" }
    return ByteArray(hex.length / 2) { i -> hex.substring(2 * i, 2 * i + 2).toInt(16).toByte() }
}
