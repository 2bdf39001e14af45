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
