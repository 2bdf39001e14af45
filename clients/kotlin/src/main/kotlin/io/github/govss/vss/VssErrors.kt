@file:JvmName("VssErrors")

package io.github.govss.vss

import com.connectrpc.ConnectException
import vss.v1.Vss

/**
 * Returns the VSS error the server attached to this failure (its code, such as
 * CONFLICT_EXCEPTION or NO_SUCH_KEY_EXCEPTION, and message), or null when there is none,
 * as for transport failures.
 */
fun ConnectException.vssError(): Vss.ErrorResponse? = unpackedDetails(Vss.ErrorResponse::class).firstOrNull()

/**
 * Returns the `FeedError` the server attached to a failure of the change feed or of a
 * lease (its reason, the cursor to resume a stream from, the lease in force), or null
 * when there is none.
 */
fun ConnectException.feedError(): Vss.FeedError? = unpackedDetails(Vss.FeedError::class).firstOrNull()

/**
 * CursorExpiredException ends [VssClient.watchChanges] and [VssClient.listChanges] when the
 * server can no longer continue the feed from [cursor]: changes after it were dropped
 * ([reason] `FEED_ERROR_REASON_CURSOR_EXPIRED`, the device was away longer than the
 * server's retention), or it lies beyond the store's latest change
 * (`FEED_ERROR_REASON_CURSOR_UNKNOWN`, for example after a restore from a backup). Either
 * way the device must list the store again: take a fresh cursor with `getChangeCursor`,
 * list the keys (`listKeyVersions`, `getObject`), then follow the feed from that cursor.
 */
class CursorExpiredException(
    /** The store whose feed could not be continued. */
    val storeId: String,
    /** The cursor the feed was asked to continue from. */
    val cursor: String,
    /** `FEED_ERROR_REASON_CURSOR_EXPIRED` or `FEED_ERROR_REASON_CURSOR_UNKNOWN`. */
    val reason: Vss.FeedErrorReason,
    /** The server's answer. */
    override val cause: ConnectException,
) : Exception("change feed of store \"$storeId\" cannot continue from cursor \"$cursor\" ($reason): list the store again", cause)

/**
 * LeaseHeldException is thrown by [VssClient.acquireLease] when another holder has the
 * lease: [lease] is the grant in force (its holder, token and time left).
 */
class LeaseHeldException(
    /** The grant in force, as the server reported it. */
    val lease: Vss.Lease,
    /** The server's answer. */
    override val cause: ConnectException,
) : Exception("lease \"${lease.name}\" of store \"${lease.storeId}\" is held by \"${lease.holder}\"", cause)

/**
 * LeaseLostException is thrown by the writes of a [VssLease] that no longer holds its
 * lease: a renewal was answered that the lease is not held with its token any more, the
 * renewals failed until the lease's time ran out, a fenced write was refused by the server
 * (`FEED_ERROR_REASON_LEASE_NOT_HELD`), or the lease was released. A write refused this
 * way locally was never sent.
 */
class LeaseLostException(
    /** The store the lease guards. */
    val storeId: String,
    /** The lease's name. */
    val name: String,
    /** The fencing token of the grant that was lost. */
    val token: Long,
    message: String,
    cause: Throwable? = null,
) : Exception("lease \"$name\" of store \"$storeId\" (token $token) is lost: $message", cause)

/** Returns the CursorExpiredException this failure means, or null. */
internal fun ConnectException.cursorExpired(storeId: String, cursor: String): CursorExpiredException? {
    val reason = feedError()?.reason ?: return null
    return when (reason) {
        Vss.FeedErrorReason.FEED_ERROR_REASON_CURSOR_EXPIRED,
        Vss.FeedErrorReason.FEED_ERROR_REASON_CURSOR_UNKNOWN,
        -> CursorExpiredException(storeId, cursor, reason, this)
        else -> null
    }
}
