package io.github.govss.vss

import com.connectrpc.BidirectionalStreamInterface
import com.connectrpc.ClientOnlyStreamInterface
import com.connectrpc.Headers
import com.connectrpc.Idempotency
import com.connectrpc.MethodSpec
import com.connectrpc.ProtocolClientInterface
import com.connectrpc.ResponseMessage
import com.connectrpc.ServerOnlyStreamInterface
import com.connectrpc.UnaryBlockingCall
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext

/**
 * RetryingProtocolClient retries the unary calls that the service declares free of side
 * effects or idempotent (`GetObject`, `ListKeyVersions`, `DeleteObject`, `ListChanges`,
 * `GetChangeCursor`, `ReleaseLease`, `GetLease`) as [policy] says, each attempt with its own
 * timeout. Other calls (`PutObjects`, the lease grants and renewals) and streams are made
 * once: a write whose answer was lost may have committed, and only the caller knows whether
 * repeating it is safe.
 *
 * Streams are opened on `Dispatchers.IO`, where connect-kotlin makes the suspending unary
 * calls too: opening one asks the [Credentials] for a header, which may block (an
 * [LnurlAuth] login does), and the caller may be on a thread that must not block, such as
 * Android's main thread.
 */
internal class RetryingProtocolClient(
    private val delegate: ProtocolClientInterface,
    private val policy: RetryPolicy,
) : ProtocolClientInterface by delegate {
    override suspend fun <Input : Any, Output : Any> unary(
        request: Input,
        headers: Headers,
        methodSpec: MethodSpec<Input, Output>,
    ): ResponseMessage<Output> {
        if (methodSpec.idempotency == Idempotency.UNKNOWN) return delegate.unary(request, headers, methodSpec)
        return retrying(policy, read = methodSpec.idempotency == Idempotency.NO_SIDE_EFFECTS) {
            delegate.unary(request, headers, methodSpec)
        }
    }

    override suspend fun <Input : Any, Output : Any> serverStream(
        headers: Headers,
        methodSpec: MethodSpec<Input, Output>,
    ): ServerOnlyStreamInterface<Input, Output> = withContext(Dispatchers.IO) { delegate.serverStream(headers, methodSpec) }

    override suspend fun <Input : Any, Output : Any> clientStream(
        headers: Headers,
        methodSpec: MethodSpec<Input, Output>,
    ): ClientOnlyStreamInterface<Input, Output> = withContext(Dispatchers.IO) { delegate.clientStream(headers, methodSpec) }

    override suspend fun <Input : Any, Output : Any> stream(
        headers: Headers,
        methodSpec: MethodSpec<Input, Output>,
    ): BidirectionalStreamInterface<Input, Output> = withContext(Dispatchers.IO) { delegate.stream(headers, methodSpec) }

    override fun <Input : Any, Output : Any> unaryBlocking(
        request: Input,
        headers: Headers,
        methodSpec: MethodSpec<Input, Output>,
    ): UnaryBlockingCall<Output> {
        if (methodSpec.idempotency == Idempotency.UNKNOWN) return delegate.unaryBlocking(request, headers, methodSpec)
        return RetryingBlockingCall(policy, methodSpec.idempotency == Idempotency.NO_SIDE_EFFECTS) {
            delegate.unaryBlocking(request, headers, methodSpec)
        }
    }
}

/** RetryingBlockingCall makes the attempts of a blocking call on the calling thread. */
private class RetryingBlockingCall<Output>(
    private val policy: RetryPolicy,
    private val read: Boolean,
    private val newCall: () -> UnaryBlockingCall<Output>,
) : UnaryBlockingCall<Output> {
    @Volatile
    private var current: UnaryBlockingCall<Output>? = null

    @Volatile
    private var canceled = false

    override fun execute(): ResponseMessage<Output> {
        var attempt = 1
        while (true) {
            val call = newCall().also { current = it }
            if (canceled) call.cancel()
            val result = call.execute()
            if (result !is ResponseMessage.Failure || canceled || attempt >= policy.maxAttempts.coerceAtLeast(1) || !retryable(result.cause, read)) {
                return result
            }
            try {
                Thread.sleep(maxOf(policy.backoff(attempt), retryAfter(result.cause)).toMillis())
            } catch (_: InterruptedException) {
                Thread.currentThread().interrupt()
                return result
            }
            attempt++
        }
    }

    override fun cancel() {
        canceled = true
        current?.cancel()
    }
}
