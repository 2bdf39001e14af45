package io.github.govss.vss

import com.connectrpc.ResponseMessage
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeoutOrNull
import vss.v1.Vss
import vss.v1.releaseLeaseRequest
import vss.v1.renewLeaseRequest
import java.time.Duration
import java.util.concurrent.atomic.AtomicReference

/**
 * VssLease is a lease on a store that this device holds, from [VssClient.acquireLease]
 * until it is released or lost, and the way to write under it.
 *
 * While held it renews itself in the background, a third of the server's `ttl_remaining`
 * after each grant or renewal (a transient failure is retried with backoff). Its
 * [putObjects] and [deleteObject] carry the lease's name and fencing token (and the
 * client's device id, if it has one), so the server commits them only while this grant is
 * in force. The lease is lost when a renewal is answered that the grant is no longer held,
 * when renewals fail until its time runs out by the local clock (measured from when each
 * renewal was sent, so never later than the server's), or when the server refuses a fenced
 * write for that reason; from then on every write throws [LeaseLostException] without
 * being sent, and [onLost] hears it once, on the thread that noticed (the renewals' or the
 * writer's). [release] (or [close]) gives the lease up.
 */
class VssLease internal constructor(
    private val client: VssClient,
    granted: Vss.Lease,
    sentAt: Long,
    /** The time to live asked for at every renewal. */
    val ttl: Duration,
    private val onLost: ((LeaseLostException) -> Unit)?,
) : AutoCloseable {
    /** The store the lease guards. */
    val storeId: String = granted.storeId

    /** The lease's name within the store. */
    val name: String = granted.name

    /** The holder named when it was acquired. */
    val holder: String = granted.holder

    /** The fencing token of this grant. */
    val token: Long = granted.token

    @Volatile
    private var latest: Vss.Lease = granted

    /** The grant as the server last reported it (at acquisition or the latest renewal). */
    val lease: Vss.Lease get() = latest

    /** The local deadline (System.nanoTime) before which the server still holds the grant. */
    @Volatile
    private var deadline: Long = sentAt + granted.ttlRemaining.toNanos()

    private val lostBy = AtomicReference<LeaseLostException?>(null)
    private val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
    private val renewals: Job

    private val headers = mapOf(
        LEASE_NAME_HEADER to listOf(name),
        LEASE_TOKEN_HEADER to listOf(token.toString()),
    )

    init {
        // Started once assigned, so that a loss noticed at once can cancel it.
        renewals = scope.launch(start = CoroutineStart.LAZY) { renewLoop() }
        renewals.start()
    }

    /** True while the lease is neither lost nor released and its time has not run out. */
    val isHeld: Boolean
        get() = lostBy.get() == null && System.nanoTime() < deadline

    /**
     * Returns why the lease is no longer held, or null while it is. A lease whose time ran
     * out is lost from then on even if the renewal loop has not noticed yet.
     */
    fun lost(): LeaseLostException? {
        lostBy.get()?.let { return it }
        if (System.nanoTime() >= deadline) return markLost("its time ran out before a renewal succeeded", null)
        return null
    }

    /**
     * Writes [request] under the lease (see `putObjects` of the client): the server commits
     * it only while this grant is in force. Throws [LeaseLostException], without sending
     * anything, once the lease is lost or released, and when the server refuses the write
     * because the grant is no longer in force (which also marks the lease lost). Every other
     * failure, a version conflict for one, is returned as the client returns it.
     */
    suspend fun putObjects(request: Vss.PutObjectRequest): ResponseMessage<Vss.PutObjectResponse> {
        checkStore(request.storeId)
        lost()?.let { throw it }
        return fenced(client.putObjects(request, headers))
    }

    /** Deletes a key under the lease, as [putObjects] writes. */
    suspend fun deleteObject(request: Vss.DeleteObjectRequest): ResponseMessage<Vss.DeleteObjectResponse> {
        checkStore(request.storeId)
        lost()?.let { throw it }
        return fenced(client.deleteObject(request, headers))
    }

    /**
     * Gives the lease up, so that another holder may take it at once, and stops the
     * renewals; later writes throw [LeaseLostException]. Returns whether the grant was
     * still in force. A failure to reach the server is thrown as the client's
     * `ConnectException` once retries are spent (the lease then ends when its time runs
     * out); the lease counts as released either way.
     */
    suspend fun release(): Boolean {
        val wasLost = lostBy.get()
        markLost("it was released", null, notify = false)
        renewals.cancel()
        scope.cancel()
        if (wasLost != null) return false
        val request = releaseLeaseRequest {
            storeId = this@VssLease.storeId
            name = this@VssLease.name
            token = this@VssLease.token
        }
        return when (val result = client.releaseLease(request)) {
            is ResponseMessage.Success -> result.message.released
            is ResponseMessage.Failure -> throw result.cause
        }
    }

    /**
     * Releases the lease, blocking the calling thread for as long as that takes; failures
     * are ignored (the lease then ends when its time runs out). In a coroutine, prefer
     * [release].
     */
    override fun close() {
        runBlocking { runCatching { release() } }
    }

    override fun toString(): String = "VssLease(store=$storeId, name=$name, holder=$holder, token=$token, held=$isHeld)"

    private fun checkStore(requestStore: String) {
        require(requestStore == storeId) { "the lease guards store \"$storeId\", not \"$requestStore\"" }
    }

    private fun <T> fenced(result: ResponseMessage<T>): ResponseMessage<T> {
        if (result is ResponseMessage.Failure &&
            result.cause.feedError()?.reason == Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_NOT_HELD
        ) {
            throw markLost("the server refused a write fenced with it (not held with this token)", result.cause)
        }
        return result
    }

    /** Records the loss (the first one wins), stops the renewals and tells [onLost]. */
    private fun markLost(why: String, cause: Throwable?, notify: Boolean = true): LeaseLostException {
        val e = LeaseLostException(storeId, name, token, why, cause)
        if (!lostBy.compareAndSet(null, e)) return lostBy.get()!!
        renewals.cancel()
        if (notify) onLost?.let { callback -> runCatching { callback(e) } }
        return e
    }

    private suspend fun renewLoop() {
        while (true) {
            val remaining = latest.ttlRemaining.toNanos()
            delay(maxOf(remaining / 3, 0) / 1_000_000)
            var attempt = 0
            while (true) {
                val left = deadline - System.nanoTime()
                if (left <= 0) {
                    markLost("renewals failed until its time ran out", null)
                    return
                }
                val request = renewLeaseRequest {
                    storeId = this@VssLease.storeId
                    name = this@VssLease.name
                    token = this@VssLease.token
                    ttl = com.google.protobuf.Duration.newBuilder().setSeconds(this@VssLease.ttl.seconds).setNanos(this@VssLease.ttl.nano).build()
                }
                val sentAt = System.nanoTime()
                val result = withTimeoutOrNull(left / 1_000_000 + 1) { client.renewLease(request) }
                if (result is ResponseMessage.Success) {
                    latest = result.message.lease
                    deadline = sentAt + result.message.lease.ttlRemaining.toNanos()
                    break
                }
                if (result is ResponseMessage.Failure &&
                    result.cause.feedError()?.reason == Vss.FeedErrorReason.FEED_ERROR_REASON_LEASE_NOT_HELD
                ) {
                    markLost("a renewal was answered that it is not held with this token", result.cause)
                    return
                }
                attempt++
                val wait = client.retry.backoff(attempt).toNanos()
                delay(minOf(wait, maxOf(deadline - System.nanoTime(), 0)) / 1_000_000 + 1)
            }
        }
    }

    internal companion object {
        const val LEASE_NAME_HEADER = "vss-lease-name"
        const val LEASE_TOKEN_HEADER = "vss-lease-token"
    }
}

internal fun com.google.protobuf.Duration.toNanos(): Long = seconds * 1_000_000_000L + nanos
