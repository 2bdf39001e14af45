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
 * val vss = VssClients.create("https://vss.example.com", Credentials.signature(SignatureKey.fromHex(secret)))
 * val kv = vss.getObject(getObjectRequest { storeId = "wallet"; key = "k" }).getOrThrow().value
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
     *   [timeout].
     * @param timeout the deadline of each call.
     */
    @JvmStatic
    @JvmOverloads
    fun create(
        baseUrl: String,
        credentials: Credentials,
        protocol: NetworkProtocol = NetworkProtocol.CONNECT,
        json: Boolean = false,
        httpClient: OkHttpClient = OkHttpClient(),
        timeout: Duration = Duration.ofSeconds(10),
    ): VssServiceClientInterface {
        require(baseUrl.startsWith("http://") || baseUrl.startsWith("https://")) {
            "baseUrl must be an http:// or https:// URL, got $baseUrl"
        }
        val callTimeout = timeout.toKotlinDuration()
        val builder = ConnectOkHttpClient.configureClient(httpClient.newBuilder())
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
        return VssServiceClient(ProtocolClient(ConnectOkHttpClient(builder.build()), config))
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
