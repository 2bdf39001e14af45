import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { MethodOptions_IdempotencyLevel as Idempotency } from "@bufbuild/protobuf/wkt";
import { backoffDelay, DEFAULT_INITIAL_BACKOFF_MS, DEFAULT_MAX_BACKOFF_MS, retryAfterMs, sleep } from "./backoff.js";

/** DEFAULT_TIMEOUT_MS bounds each attempt of a unary call, as the Go client's DefaultTimeout. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** DEFAULT_MAX_ATTEMPTS is how often a call is tried, the first attempt included, as in the Go client. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * RetryPolicy says how often and how patiently idempotent calls are retried. The wait
 * before retry n (from 1) is drawn uniformly from [d/2, d] with
 * d = min(initialBackoffMs * 2^(n-1), maxBackoffMs), and is at least the server's
 * Retry-After.
 */
export interface RetryPolicy {
  /** maxAttempts counts the first attempt; 1 turns retries off (DEFAULT_MAX_ATTEMPTS). */
  maxAttempts?: number;
  /** initialBackoffMs is the wait before the first retry (100 ms). */
  initialBackoffMs?: number;
  /** maxBackoffMs caps the wait between attempts (3 s). */
  maxBackoffMs?: number;
}

/**
 * retryable reports whether a call may be repeated without changing its outcome: the
 * methods the service marks free of side effects or idempotent (GetObject,
 * ListKeyVersions, DeleteObject, ListChanges, GetChangeCursor, ReleaseLease, GetLease).
 * PutObjects, AcquireLease and RenewLease are left to the caller, who knows whether a
 * repeat is safe.
 */
function retryable(idempotency: Idempotency): boolean {
  return idempotency === Idempotency.NO_SIDE_EFFECTS || idempotency === Idempotency.IDEMPOTENT;
}

/**
 * mayPass reports whether a failed attempt is worth another: unavailable, internal,
 * unknown (most transport errors, and a page that cannot reach the server),
 * deadline_exceeded when the attempt's own timeout expired, and canceled while the
 * caller's signal is live (a reset connection); the Go client's rule.
 */
function mayPass(err: ConnectError, timedOut: boolean): boolean {
  switch (err.code) {
    case Code.Unavailable:
    case Code.Internal:
    case Code.Unknown:
    case Code.Canceled:
      return true;
    case Code.DeadlineExceeded:
      return timedOut;
  }
  return false;
}

/**
 * retryInterceptor bounds each attempt of a unary call by timeoutMs (0 or less: no
 * bound but the call's own) and retries the idempotent methods (see RetryPolicy) with
 * exponential backoff and jitter while the failure may pass and the call's signal is
 * live. Streams (WatchChanges) are passed through untouched: watchChanges reconnects
 * them itself. Put it first, so that authentication runs again for every attempt.
 */
export function retryInterceptor(policy: RetryPolicy = {}, timeoutMs: number = DEFAULT_TIMEOUT_MS): Interceptor {
  const maxAttempts = Math.max(policy.maxAttempts ?? DEFAULT_MAX_ATTEMPTS, 1);
  const initial = policy.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS;
  const max = policy.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
  return (next) => async (req) => {
    if (req.stream) {
      return next(req);
    }
    const attempts = retryable(req.method.idempotency) ? maxAttempts : 1;
    for (let attempt = 1; ; attempt++) {
      const controller = new AbortController();
      const forward = () => controller.abort(req.signal.reason);
      req.signal.addEventListener("abort", forward, { once: true });
      if (req.signal.aborted) {
        forward();
      }
      let timedOut = false;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              timedOut = true;
              controller.abort(new ConnectError(`the attempt took longer than ${timeoutMs} ms`, Code.DeadlineExceeded));
            }, timeoutMs)
          : undefined;
      try {
        return await next({ ...req, signal: controller.signal });
      } catch (caught) {
        const err = timedOut
          ? new ConnectError(`the attempt took longer than ${timeoutMs} ms`, Code.DeadlineExceeded, undefined, undefined, caught)
          : ConnectError.from(caught);
        if (attempt >= attempts || req.signal.aborted || !mayPass(err, timedOut)) {
          throw err;
        }
        await sleep(Math.max(backoffDelay(attempt, initial, max), retryAfterMs(err)), req.signal);
      } finally {
        clearTimeout(timer);
        req.signal.removeEventListener("abort", forward);
      }
    }
  };
}
