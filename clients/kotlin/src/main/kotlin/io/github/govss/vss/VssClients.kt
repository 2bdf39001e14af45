package io.github.govss.vss

import com.connectrpc.Interceptor
import com.connectrpc.ProtocolClientConfig
import com.connectrpc.StreamFunction
import com.connectrpc.UnaryFunction
import com.connectrpc.extensions.GoogleJavaJSONStrategy
import com.connectrpc.extensions.GoogleJavaProtobufStrategy
import com.connectrpc.http.clone
import com.connectrpc.impl.ProtocolClient
import com.connectrpc.okhttp.ConnectOkHttpClient
import com.connectrpc.protocols.NetworkProtocol
import kotlinx.coroutines.Dispatchers
import okhttp3.OkHttpClient
import okhttp3.Protocol
import vss.v1.VssServiceClient
import vss.v1.VssServiceClientInterface
import java.time.Duration
import kotlin.time.toKotlinDuration

/**
 * VssClients creates clients of `vss.v1.VssService` that authenticate every request.
 *
 * ```
 * VssClients.create("https://vss.example.com", Credentials.signature(SignatureKey.fromHex(secret))).use { vss ->
 *     val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "k" }).getOrThrow().value
 * }
 * ```
 */
object VssClients {
    /**
     * Returns a client of the VSS server at [baseUrl] (its root, for example
     * `http://127.0.0.1:8080`; the service lives under `/vss.v1.VssService/`).
     *
     * @param credentials adds the `Authorization` header to every request.
     * @param protocol Connect (the default), gRPC-Web, or gRPC. gRPC needs HTTP/2: over
     *   `http://` the client then speaks cleartext HTTP/2 directly.
     * @param json sends JSON instead of binary protobuf.
     * @param httpClient the OkHttp client to derive the transport from (its connection
     *   pool, interceptors, TLS settings); its read and write timeouts are replaced by
     *   [timeout]. Given one, the caller owns it: [VssClient.close] leaves it running.
     *   Without one, the client makes its own, and [VssClient.close] shuts it down.
     * @param timeout the deadline of each call.
     */
    @JvmStatic
    @JvmOverloads
    fun create(
        baseUrl: String,
        credentials: Credentials,
        protocol: NetworkProtocol = NetworkProtocol.CONNECT,
        json: Boolean = false,
        httpClient: OkHttpClient? = null,
        timeout: Duration = Duration.ofSeconds(10),
    ): VssClient {
        require(baseUrl.startsWith("http://") || baseUrl.startsWith("https://")) {
            "baseUrl must be an http:// or https:// URL, got $baseUrl"
        }
        val callTimeout = timeout.toKotlinDuration()
        val base = httpClient ?: OkHttpClient()
        val builder = ConnectOkHttpClient.configureClient(base.newBuilder())
        if (protocol == NetworkProtocol.GRPC && baseUrl.startsWith("http://")) {
            builder.protocols(listOf(Protocol.H2_PRIOR_KNOWLEDGE))
        }
        val config = ProtocolClientConfig(
            host = baseUrl.trimEnd('/'),
            serializationStrategy = if (json) GoogleJavaJSONStrategy() else GoogleJavaProtobufStrategy(),
            networkProtocol = protocol,
            interceptors = listOf { AuthInterceptor(credentials) },
            ioCoroutineContext = Dispatchers.IO,
            timeoutOracle = { callTimeout },
        )
        val http = builder.build()
        return VssClient(VssServiceClient(ProtocolClient(ConnectOkHttpClient(http), config)), http, owned = httpClient == null)
    }
}

/**
 * VssClient is a client of `vss.v1.VssService` (every call of [VssServiceClientInterface])
 * that can be closed. [close] stops the threads and connections of the OkHttp client it
 * made for itself, so that a program ends as soon as its work is done rather than when
 * OkHttp's idle threads time out (about a minute); calls made after [close] fail. An OkHttp
 * client passed to [VssClients.create] belongs to the caller and is left running.
 */
class VssClient internal constructor(
    service: VssServiceClientInterface,
    internal val http: OkHttpClient,
    private val owned: Boolean,
) : VssServiceClientInterface by service, AutoCloseable {
    override fun close() {
        if (!owned) return
        http.dispatcher.executorService.shutdown()
        http.connectionPool.evictAll()
        http.cache?.close()
    }
}

/** AuthInterceptor adds the credentials' `Authorization` header to each request. */
private class AuthInterceptor(private val credentials: Credentials) : Interceptor {
    override fun unaryFunction() = UnaryFunction(
        requestFunction = { request ->
            val value = credentials.authorization()
            if (value == null) request else request.clone(headers = request.headers + (AUTHORIZATION to listOf(value)))
        },
    )

    override fun streamFunction() = StreamFunction(
        requestFunction = { request ->
            val value = credentials.authorization()
            if (value == null) request else request.clone(headers = request.headers + (AUTHORIZATION to listOf(value)))
        },
    )

    private companion object {
        const val AUTHORIZATION = "authorization"
    }
}
