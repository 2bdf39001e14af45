package io.github.govss.vss

import com.connectrpc.Code
import com.connectrpc.ConnectException
import com.connectrpc.ResponseMessage
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import java.time.Duration
import java.util.concurrent.ThreadLocalRandom

/**
 * RetryPolicy says how often and how patiently a failure that may pass is tried again:
 * the Connect codes `UNAVAILABLE`, `INTERNAL_ERROR`, `UNKNOWN` (most transport errors),
 * `DEADLINE_EXCEEDED` and `CANCELED` while the caller is still active, and
 * `RESOURCE_EXHAUSTED` for reads; never answers that will not change (conflict, not found,
 * invalid request, unauthenticated). The wait before retry n (from 1) is drawn uniformly
 * from [d/2, d] with d = min(initialBackoff * 2^(n-1), maxBackoff), as in the Go client.
 */
class RetryPolicy @JvmOverloads constructor(
    /**
     * The number of attempts, the first included; 1 turns retries off. For
     * [VssClient.watchChanges] it counts the connections in a row that failed before
     * delivering anything, and 0 means no limit.
     */
    val maxAttempts: Int = DEFAULT_MAX_ATTEMPTS,
    /** The wait before the first retry. */
    val initialBackoff: Duration = DEFAULT_INITIAL_BACKOFF,
    /** The longest wait between attempts. */
    val maxBackoff: Duration = DEFAULT_MAX_BACKOFF,
) {
    init {
        require(maxAttempts >= 0) { "maxAttempts must not be negative" }
        require(!initialBackoff.isNegative && !maxBackoff.isNegative) { "backoffs must not be negative" }
    }

    /** Returns the wait after the given failed attempt (from 1), with jitter. */
    fun backoff(attempt: Int): Duration {
        val max = maxBackoff.toNanos()
        val shift = (attempt - 1).coerceIn(0, 62)
        val initial = initialBackoff.toNanos()
        val grown = if (initial > 0 && initial <= (Long.MAX_VALUE shr shift)) initial shl shift else max
        val d = minOf(grown, max)
        if (d <= 0) return Duration.ZERO
        return Duration.ofNanos(d / 2 + ThreadLocalRandom.current().nextLong(d / 2 + 1))
    }

    override fun toString(): String = "RetryPolicy(maxAttempts=$maxAttempts, initialBackoff=$initialBackoff, maxBackoff=$maxBackoff)"

    companion object {
        /** The attempts of a call when no policy is given: 5, as in the Go client. */
        const val DEFAULT_MAX_ATTEMPTS = 5

        /** The first wait when no policy is given: 100 ms. */
        @JvmField
        val DEFAULT_INITIAL_BACKOFF: Duration = Duration.ofMillis(100)

        /** The longest wait when no policy is given: 3 s. */
        @JvmField
        val DEFAULT_MAX_BACKOFF: Duration = Duration.ofSeconds(3)

        /** The policy of calls when none is given. */
        @JvmField
        val DEFAULT = RetryPolicy()

        /** NONE makes every call once. */
        @JvmField
        val NONE = RetryPolicy(maxAttempts = 1)

        /**
         * The reconnections of [VssClient.watchChanges] when none are given: without limit,
         * from 100 ms up to 10 s apart.
         */
        @JvmField
        val WATCH = RetryPolicy(maxAttempts = 0, initialBackoff = Duration.ofMillis(100), maxBackoff = Duration.ofSeconds(10))
    }
}

/**
 * Reports whether a failure may pass if the call is made again while the caller is still
 * active. [read] also retries `RESOURCE_EXHAUSTED` (rate limits, a stream limit, a slow
 * consumer), which for a write may be a quota that no retry lifts.
 */
internal fun retryable(e: Throwable, read: Boolean): Boolean {
    if (e !is ConnectException) return true // a transport failure before any answer
    return when (e.code) {
        Code.UNAVAILABLE, Code.INTERNAL_ERROR, Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.CANCELED -> true
        Code.RESOURCE_EXHAUSTED -> read
        else -> false
    }
}

/** The wait a failure's `Retry-After` header asks for (at most a minute), or zero. */
internal fun retryAfter(e: Throwable): Duration {
    if (e !is ConnectException) return Duration.ZERO
    val value = e.metadata.entries.firstOrNull { it.key.equals("retry-after", ignoreCase = true) }?.value?.firstOrNull()
    val seconds = value?.trim()?.toLongOrNull() ?: return Duration.ZERO
    return Duration.ofSeconds(seconds.coerceIn(0, 60))
}

/** Sleeps for the wait before retry [attempt] of [policy] after [cause]. */
internal suspend fun backoff(policy: RetryPolicy, attempt: Int, cause: Throwable) {
    val wait = maxOf(policy.backoff(attempt), retryAfter(cause))
    delay(wait.toMillis())
}

/**
 * Makes [call] until it succeeds, fails in a way no retry changes, or [policy]'s attempts
 * are spent, with backoff between attempts. It returns the last result.
 */
internal suspend fun <T> retrying(policy: RetryPolicy, read: Boolean, call: suspend () -> ResponseMessage<T>): ResponseMessage<T> {
    var attempt = 1
    while (true) {
        val result = call()
        if (result !is ResponseMessage.Failure) return result
        if (attempt >= policy.maxAttempts.coerceAtLeast(1) || !retryable(result.cause, read) || !currentCoroutineContext().isActive) {
            return result
        }
        backoff(policy, attempt, result.cause)
        attempt++
    }
}
