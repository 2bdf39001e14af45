package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ErrorDetailParser
import com.connectrpc.Headers
import com.connectrpc.Interceptor
import com.connectrpc.StreamFunction
import com.connectrpc.StreamResult
import com.connectrpc.UnaryFunction
import okio.Buffer
import okio.ByteString.Companion.decodeBase64

/**
 * StreamStatusInterceptor makes a stream that ends without an error, but whose response
 * headers or trailers carry a non-OK `grpc-status`, end with the [ConnectException] that
 * status means: its code, `grpc-message`, the details of `grpc-status-details-bin` and the
 * headers and trailers as metadata.
 *
 * connect-kotlin (0.7.4) reads a gRPC-Web "trailers-only" response, where the server
 * refuses a stream at once and puts its status in the response headers with no body
 * (`UNAUTHENTICATED` for refused credentials, for example), as a stream that ended
 * normally. Every stream of a client passes through its interceptors, and this one is the
 * last of ours, so the first to see a response after the protocol's own: the other
 * interceptors (the [AuthInterceptor] drops a refused token) and the stream's response
 * channel then see the failure like any other, and callers classify it as usual. The status
 * of the trailers wins over that of the headers when both are there. connect-kotlin makes
 * one interceptor per call.
 */
internal class StreamStatusInterceptor(private val errorDetailParser: ErrorDetailParser) : Interceptor {
    /** The response headers of this call's stream, once they arrived. */
    @Volatile
    private var headers: Headers = emptyMap()

    override fun unaryFunction() = UnaryFunction()

    override fun streamFunction() = StreamFunction(
        streamResultFunction = { result ->
            when (result) {
                is StreamResult.Headers -> result.also { headers = it.headers }
                is StreamResult.Complete -> {
                    val failure = if (result.cause == null) statusFailure(headers, result.trailers, errorDetailParser) else null
                    if (failure == null) result else StreamResult.Complete(failure, result.trailers)
                }
                else -> result
            }
        },
    )
}

private const val GRPC_STATUS = "grpc-status"
private const val GRPC_MESSAGE = "grpc-message"
private const val GRPC_STATUS_DETAILS = "grpc-status-details-bin"

/**
 * Returns the failure a non-OK `grpc-status` in [trailers], or else in [headers] (a
 * trailers-only response), reports, with its `grpc-message` and `grpc-status-details-bin`,
 * or null when there is no such status.
 */
internal fun statusFailure(headers: Headers, trailers: Headers, errorDetailParser: ErrorDetailParser): ConnectException? {
    val source = if (trailers.value(GRPC_STATUS) != null) trailers else headers
    val status = source.value(GRPC_STATUS)?.trim() ?: return null
    val code = Code.fromValue(status.toIntOrNull() ?: -1) ?: return null
    val message = source.value(GRPC_MESSAGE)?.let(::percentDecode)
        ?: "the server answered ${code.codeName} without a message"
    val failure = ConnectException(code, message, metadata = headers + trailers)
    val details = source.value(GRPC_STATUS_DETAILS)?.trim()?.decodeBase64()?.toByteArray() ?: return failure
    val parsed = runCatching { errorDetailParser.parseDetails(details) }.getOrNull()
    return if (parsed.isNullOrEmpty()) failure else failure.withErrorDetails(errorDetailParser, parsed)
}

/** Returns the first value of the header [name], whatever the case of its key. */
private fun Headers.value(name: String): String? =
    entries.firstOrNull { it.key.equals(name, ignoreCase = true) }?.value?.firstOrNull()

/** Decodes the percent-encoding of `grpc-message` (UTF-8 bytes as %XX). */
private fun percentDecode(encoded: String): String {
    if ('%' !in encoded) return encoded
    val buffer = Buffer()
    var i = 0
    while (i < encoded.length) {
        val c = encoded[i]
        val hex = if (c == '%' && i + 2 < encoded.length && encoded[i + 1].isHex() && encoded[i + 2].isHex()) encoded.substring(i + 1, i + 3).toInt(16) else null
        if (hex != null) {
            buffer.writeByte(hex)
            i += 3
        } else {
            buffer.writeUtf8CodePoint(encoded.codePointAt(i))
            i += Character.charCount(encoded.codePointAt(i))
        }
    }
    return buffer.readUtf8()
}

private fun Char.isHex(): Boolean = this in '0'..'9' || this in 'a'..'f' || this in 'A'..'F'
