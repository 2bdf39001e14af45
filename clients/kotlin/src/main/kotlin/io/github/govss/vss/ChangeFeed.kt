package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.channels.ReceiveChannel
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import vss.v1.Vss
import vss.v1.VssServiceClientInterface
import vss.v1.listChangesRequest
import vss.v1.watchChangesRequest
import java.time.Duration

/**
 * ChangeBatch is what [VssClient.watchChanges] and [VssClient.listChanges] deliver: some
 * changes of a store, in commit order, and the cursor after them. A device applies the
 * changes, then stores [cursor]; following the feed from that cursor later continues with
 * the next change, missing none and repeating none.
 *
 * A batch may be empty: a stream's first message after it (re)connected, which says that
 * the device is caught up, and the keep-alives of an idle stream; its cursor is then the
 * previous one.
 */
data class ChangeBatch(
    /** The changes, oldest first; the changes of one write are consecutive. */
    val changes: List<Vss.Change>,
    /** The cursor after the last change of this batch (never empty). */
    val cursor: String,
)

/**
 * RetryListener hears each failure that [VssClient.watchChanges] recovers from, before it
 * waits [delay] and reconnects, for logs and metrics.
 */
fun interface RetryListener {
    /**
     * Called with the failure, the number of connections in a row that failed (from 1)
     * and the wait before the next one.
     */
    fun onRetry(cause: Throwable, attempt: Int, delay: Duration)
}

/** StreamIdleException is the failure of a stream that sent nothing for too long. */
internal class StreamIdleException(idle: Duration) :
    Exception("the change stream sent nothing for $idle (keep-alives included): reconnecting")

/** StreamEndedException is the failure of a stream the server closed without an error. */
internal class StreamEndedException : Exception("the change stream ended without an error: reconnecting")

internal fun watchFlow(
    service: VssServiceClientInterface,
    storeId: String,
    startCursor: String,
    includeValues: Boolean,
    reconnect: RetryPolicy,
    idleTimeout: Duration,
    listener: RetryListener?,
): Flow<ChangeBatch> = flow {
    var cursor = startCursor
    var failures = 0
    while (true) {
        currentCoroutineContext().ensureActive()
        val failure = connect(service, storeId, cursor, includeValues, idleTimeout) { message ->
            // The stream's cursor only moves forward past what it sent: the next connection
            // starts after the last change delivered here.
            cursor = message.cursor
            failures = 0
            emit(ChangeBatch(message.changesList, message.cursor))
        }
        currentCoroutineContext().ensureActive()
        if (failure is ConnectException) {
            failure.cursorExpired(storeId, cursor)?.let { throw it }
        }
        // Resuming from the cursor of the last batch delivered is always exact. A stream the
        // server ended names the same cursor in its FeedError (resume_cursor): every message
        // it wrote before the error arrived before the error.
        failures++
        if (!retryable(failure, read = true) || (reconnect.maxAttempts in 1..failures)) throw failure
        val wait = maxOf(reconnect.backoff(failures), retryAfter(failure))
        listener?.onRetry(failure, failures, wait)
        delay(wait.toMillis())
    }
}

/**
 * Opens one stream from [cursor], hands each message to [deliver], and returns how the stream
 * ended (it never ends without a failure). Failures of [deliver] propagate.
 */
private suspend fun connect(
    service: VssServiceClientInterface,
    storeId: String,
    cursor: String,
    includeValues: Boolean,
    idleTimeout: Duration,
    deliver: suspend (Vss.WatchChangesResponse) -> Unit,
): Throwable {
    val stream = try {
        service.watchChanges()
    } catch (e: CancellationException) {
        throw e
    } catch (e: Exception) {
        return e
    }
    try {
        val request = watchChangesRequest {
            this.storeId = storeId
            this.cursor = cursor
            this.includeValues = includeValues
        }
        val sent = stream.sendAndClose(request)
        val channel = stream.responseChannel()
        if (sent.isFailure) {
            // The reason of a failed send is in the response channel, usually at once.
            val reason = withTimeoutOrNull(1_000) { channel.receiveCatching() }
            return reason?.exceptionOrNull() ?: sent.exceptionOrNull()!!
        }
        while (true) {
            when (val next = receive(channel, idleTimeout)) {
                is Received.Message -> deliver(next.message)
                is Received.Ended -> return next.cause
            }
        }
    } finally {
        withContext(NonCancellable) { stream.receiveClose() }
    }
}

private sealed interface Received {
    class Message(val message: Vss.WatchChangesResponse) : Received
    class Ended(val cause: Throwable) : Received
}

/** Receives the stream's next message, or how it ended, waiting at most [idleTimeout]. */
private suspend fun receive(channel: ReceiveChannel<Vss.WatchChangesResponse>, idleTimeout: Duration): Received {
    val result = withTimeoutOrNull(idleTimeout.toMillis()) { channel.receiveCatching() }
        ?: return Received.Ended(StreamIdleException(idleTimeout))
    result.getOrNull()?.let { return Received.Message(it) }
    val cause = result.exceptionOrNull() ?: return Received.Ended(StreamEndedException())
    if (cause is CancellationException) currentCoroutineContext().ensureActive()
    return Received.Ended(cause)
}

internal fun listFlow(
    service: VssServiceClientInterface,
    storeId: String,
    startCursor: String,
    includeValues: Boolean,
    pageSize: Int,
): Flow<ChangeBatch> = flow {
    require(pageSize >= 0) { "pageSize must not be negative" }
    var cursor = startCursor
    while (true) {
        val request = listChangesRequest {
            this.storeId = storeId
            this.cursor = cursor
            this.includeValues = includeValues
            this.pageSize = pageSize
        }
        val page = when (val result = service.listChanges(request)) {
            is ResponseMessage.Success -> result.message
            is ResponseMessage.Failure -> throw result.cause.cursorExpired(storeId, cursor) ?: result.cause
        }
        if (page.nextCursor.isEmpty()) throw ConnectException(Code.INTERNAL_ERROR, "ListChanges answered an empty next_cursor")
        cursor = page.nextCursor
        emit(ChangeBatch(page.changesList, page.nextCursor))
        if (!page.hasMore) return@flow
    }
}
