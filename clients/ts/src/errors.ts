import { Code, ConnectError } from "@connectrpc/connect";
import { FeedErrorReason, FeedErrorSchema, type FeedError, type Lease } from "./gen/vss/v1/vss_pb.js";

/**
 * feedError returns the FeedError detail a failed change-feed or lease call carries
 * (its reason, the cursor to resume from, the lease in force), or undefined when err is
 * not a Connect error or carries none.
 */
export function feedError(err: unknown): FeedError | undefined {
  if (!(err instanceof ConnectError)) {
    return undefined;
  }
  return err.findDetails(FeedErrorSchema)[0];
}

/**
 * feedErrorReason returns the reason of the FeedError detail of err (for example
 * FeedErrorReason.CURSOR_EXPIRED), or undefined when it carries none.
 */
export function feedErrorReason(err: unknown): FeedErrorReason | undefined {
  return feedError(err)?.reason;
}

/**
 * CursorExpiredError ends a change feed (watchChanges, listChangePages) whose cursor the
 * server cannot continue from: the changes after it were dropped (reason
 * CURSOR_EXPIRED) or it lies beyond the store's latest change (CURSOR_UNKNOWN, for
 * example after the database was restored). Either way the application must list the
 * store again, after taking a fresh cursor with getChangeCursor, and follow the feed
 * from that cursor. cause is the server's ConnectError.
 */
export class CursorExpiredError extends Error {
  override name = "CursorExpiredError";
  /** reason is FeedErrorReason.CURSOR_EXPIRED or FeedErrorReason.CURSOR_UNKNOWN. */
  readonly reason: FeedErrorReason;
  /** cursor is the cursor the server refused. */
  readonly cursor: string;

  constructor(reason: FeedErrorReason, cursor: string, cause: ConnectError) {
    const what = reason === FeedErrorReason.CURSOR_UNKNOWN ? "is unknown to the server" : "has expired";
    super(`change feed cursor ${JSON.stringify(cursor)} ${what}: list the store again from a fresh cursor`, { cause });
    this.reason = reason;
    this.cursor = cursor;
  }
}

/**
 * cursorExpired returns err as a CursorExpiredError when it is the server's refusal of
 * cursor (FAILED_PRECONDITION with reason CURSOR_EXPIRED or CURSOR_UNKNOWN), and
 * undefined otherwise.
 */
export function cursorExpired(err: unknown, cursor: string): CursorExpiredError | undefined {
  if (!(err instanceof ConnectError) || err.code !== Code.FailedPrecondition) {
    return undefined;
  }
  const reason = feedErrorReason(err);
  if (reason === FeedErrorReason.CURSOR_EXPIRED || reason === FeedErrorReason.CURSOR_UNKNOWN) {
    return new CursorExpiredError(reason, cursor, err);
  }
  return undefined;
}

/**
 * LeaseHeldError is the refusal of acquireLease: another holder has the lease. lease is
 * the grant in force (its holder, token and ttlRemaining), as the server reported it.
 */
export class LeaseHeldError extends Error {
  override name = "LeaseHeldError";
  /** lease is the grant in force, if the server named it. */
  readonly lease: Lease | undefined;

  constructor(lease: Lease | undefined, cause: ConnectError) {
    super(`the lease is held by ${JSON.stringify(lease?.holder ?? "another holder")}`, { cause });
    this.lease = lease;
  }
}

/**
 * LeaseLostReason says how a lease held through acquireLease ended: "not-held" when the
 * server answered a renewal or a fenced write with LEASE_NOT_HELD (the lease expired or
 * was granted to another holder), "expired" when renewals failed until the lease's
 * local deadline passed, "released" after release() or the abort of its signal.
 */
export type LeaseLostReason = "not-held" | "expired" | "released";

/**
 * LeaseLostError is how a HeldLease refuses a write once the lease is lost: the write
 * was not sent. reason tells why; cause is the server's error, if there was one.
 */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
  /** reason says how the lease ended. */
  readonly reason: LeaseLostReason;
  /** storeId and leaseName name the lease, token its grant. */
  readonly storeId: string;
  readonly leaseName: string;
  readonly token: bigint;

  constructor(reason: LeaseLostReason, storeId: string, leaseName: string, token: bigint, cause?: unknown) {
    const why = {
      "not-held": "the server no longer holds it for this grant",
      expired: "it could not be renewed before it expired",
      released: "it was released",
    }[reason];
    super(`lease ${JSON.stringify(leaseName)} (token ${token}) is lost: ${why}`, cause === undefined ? undefined : { cause });
    this.reason = reason;
    this.storeId = storeId;
    this.leaseName = leaseName;
    this.token = token;
  }
}
