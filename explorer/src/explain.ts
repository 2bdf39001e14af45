// What the page says when a call fails: what it was doing, for whom, on which server, and
// what probably happened, in words a user can act on rather than a transport's message.
import { Code, ConnectError } from "@connectrpc/connect";

/** Asked is the call that failed: what the page was doing, on which server, for whom. */
export interface Asked {
  /** action says what the page was doing, e.g. `listing store "wallet"`. */
  action: string;
  server: string;
  /** user is the public key the request was signed for, or how a token names it. */
  user: string;
}

/**
 * isNetworkFailure reports whether err means that no answer reached the page: the
 * server is down or unreachable, or the browser withheld its answer (CORS). fetch
 * reports all of them as a TypeError, which Connect wraps as unknown or unavailable.
 */
export function isNetworkFailure(err: unknown): boolean {
  if (err instanceof TypeError) {
    return true;
  }
  if (!(err instanceof ConnectError) || (err.code !== Code.Unknown && err.code !== Code.Unavailable)) {
    return false;
  }
  return err.cause instanceof TypeError || /failed to fetch|networkerror|load failed|fetch failed/i.test(err.rawMessage);
}

/**
 * explainError turns a failed call into the sentence the page shows. reachable says
 * whether, after a network failure, the server answered a plain request (probeServer):
 * then the browser withheld the answer because the server does not allow pageOrigin.
 */
export function explainError(err: unknown, asked: Asked, pageOrigin: string, reachable?: boolean): string {
  const head = `${capitalize(asked.action)} as user ${asked.user} on ${asked.server} failed: `;
  if (isNetworkFailure(err)) {
    if (reachable === false) {
      return head + "the server did not answer. Is it running, and is this its address?";
    }
    if (asked.server !== pageOrigin) {
      return (
        head +
        `the server answered, but the browser withheld the answer: it does not allow calls from ${pageOrigin} (CORS). ` +
        `Start it with --cors-origins ${pageOrigin} (or VSS_CORS_ORIGINS).`
      );
    }
    return head + `the connection failed (${message(err)}). Try again.`;
  }
  if (!(err instanceof ConnectError)) {
    return head + message(err);
  }
  const why = errorText(err);
  switch (err.code) {
    case Code.Unauthenticated:
      return head + `the server refused the credentials (${why}). Check the private key or token, and that the server accepts that kind (--auth).`;
    case Code.PermissionDenied:
      return head + `the server refused access (${why}).`;
    case Code.ResourceExhausted:
      return head + `refused by the user's quota or rate limit (${why}).`;
    case Code.InvalidArgument:
      return head + `the server refused the request as invalid (${why}).`;
    case Code.NotFound:
      return head + `not found (${why}); it may have been deleted since the listing was loaded.`;
    case Code.DeadlineExceeded:
      return head + `the server did not answer in time (${why}).`;
    case Code.Unavailable:
      return head + `the server is unavailable (${why}). Try again shortly.`;
    default:
      return head + why;
  }
}

/**
 * probeServer asks whether server answers at all: a request the browser may send to any
 * origin it is allowed to connect to (no-cors, no credentials), whose answer it does not
 * show the page but whose arrival it reports.
 */
export async function probeServer(server: string): Promise<boolean> {
  try {
    await fetch(new URL("/healthz", server), { mode: "no-cors", credentials: "omit", cache: "no-store" });
    return true;
  } catch {
    return false;
  }
}

/**
 * errorText is an error in a few words: a Connect error as its code (as the protocol
 * writes it, e.g. unauthenticated) and message, anything else as its message.
 */
export function errorText(err: unknown): string {
  if (err instanceof ConnectError) {
    return `${Code[err.code]?.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase() ?? err.code}: ${err.rawMessage}`;
  }
  return message(err);
}

function message(err: unknown): string {
  if (err instanceof ConnectError) {
    return err.rawMessage;
  }
  return err instanceof Error ? err.message : String(err);
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
