import { Code, ConnectError } from "@connectrpc/connect";

/** DEFAULT_INITIAL_BACKOFF_MS is the wait before the first retry, as in the Go client. */
export const DEFAULT_INITIAL_BACKOFF_MS = 100;

/** DEFAULT_MAX_BACKOFF_MS caps the wait between attempts, as in the Go client. */
export const DEFAULT_MAX_BACKOFF_MS = 3_000;

/**
 * backoffDelay returns the wait in milliseconds after the attempt-th failure (from 1):
 * drawn uniformly from [d/2, d] with d = min(initialMs * 2^(attempt-1), maxMs), the
 * Go client's rule.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  const d = Math.min(initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30), maxMs);
  return d / 2 + Math.random() * (d / 2);
}

/**
 * retryAfterMs reads the Retry-After header (whole seconds) of a failed call, or 0.
 */
export function retryAfterMs(err: ConnectError): number {
  const value = err.metadata.get("Retry-After");
  const seconds = value === null ? NaN : Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

/**
 * sleep resolves after ms, or rejects with a Canceled ConnectError as soon as signal
 * aborts.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(ConnectError.from(signal.reason, Code.Canceled));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(signal?.reason, Code.Canceled));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * transient reports whether a failed call may succeed if tried again: unavailable,
 * internal, unknown (most transport errors), deadline_exceeded, resource_exhausted (a
 * stream limit, a slow consumer, a rate limit) and canceled, provided the caller's own
 * signal did not cancel it (a connection reset can surface as canceled).
 */
export function transient(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) {
    return false;
  }
  switch (ConnectError.from(err).code) {
    case Code.Unavailable:
    case Code.Internal:
    case Code.Unknown:
    case Code.DeadlineExceeded:
    case Code.ResourceExhausted:
    case Code.Canceled:
      return true;
  }
  return false;
}
