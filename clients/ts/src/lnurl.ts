import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { bytesToHex, concatBytes, hexToBytes } from "@noble/hashes/utils.js";
import { secretKeyBytes, type PrivateKey } from "./keys.js";

/**
 * DEFAULT_REFRESH_BEFORE_MS is how long before its exp a cached LNURL-auth token is
 * replaced when LnurlAuthOptions.refreshBeforeMs is not given: 60 seconds, as
 * vss-client-ng and the Go client's DefaultRefreshBefore.
 */
export const DEFAULT_REFRESH_BEFORE_MS = 60_000;

/** MAX_LNURL_BYTES bounds the issuer's answer to the first GET (the LNURL). */
const MAX_LNURL_BYTES = 4 << 10;

/** MAX_ANSWER_BYTES bounds the issuer's answer to the signed LNURL (the token). */
const MAX_ANSWER_BYTES = 64 << 10;

/**
 * LnurlAuthOptions configure LnurlAuth, and with it the { lnurlAuth } choice of VssAuth.
 */
export interface LnurlAuthOptions {
  /**
   * url is the issuer's LNURL endpoint, such as https://vss.example.com/auth/lnurl for a
   * vss-server started with --lnurl-auth: a GET answers a LUD-04 login LNURL
   * (…?tag=login&k1=<64 hex digits>) as plain text.
   */
  url: string;
  /**
   * linkingKey signs the challenges; the server's user is its public key (the same user
   * as { privateKey } with the same key). Required unless linkingKeyFor is given.
   */
  linkingKey?: PrivateKey;
  /**
   * linkingKeyFor, if given, returns the linking key for the domain of the LNURL the
   * issuer answered, for wallets that derive one key per domain (LUD-05, as vss-client-ng
   * does from its seed). It takes precedence over linkingKey.
   */
  linkingKeyFor?: (domain: string) => PrivateKey | Promise<PrivateKey>;
  /**
   * refreshBeforeMs is how long before the token's exp a new one is fetched
   * (DEFAULT_REFRESH_BEFORE_MS); 0 keeps a token until its exp.
   */
  refreshBeforeMs?: number;
  /**
   * fetch replaces globalThis.fetch for the requests to the issuer, for example to add a
   * proxy or to count logins. The VSS calls themselves go through the client's transport.
   */
  fetch?: typeof globalThis.fetch;
  /** now is the clock that decides when the token is due (the system clock). */
  now?: () => Date;
}

/**
 * LnurlAuth logs in with LNURL-auth and keeps the JWT it receives, the exchange
 * vss-client-ng's LnurlAuthToJwtProvider makes:
 *
 *  1. GET the issuer's url; it answers an LNURL …?tag=login&k1=<k1>.
 *  2. Sign the 32 bytes of k1 with the linking key (ECDSA over secp256k1, DER encoded,
 *     low S) and GET the LNURL with &sig=<signature hex>&key=<compressed public key hex>.
 *  3. The answer is JSON {"status":"OK","token":"<JWT>"}, or
 *     {"status":"ERROR","reason":"…"}.
 *
 * The token is cached and shared by all calls until refreshBeforeMs ahead of its exp
 * claim (a token without exp is kept until the server refuses it); concurrent calls that
 * find no valid token wait for a single login. Login failures the server may recover
 * from (network errors, 5xx and 429 answers) are ConnectErrors with Code.Unavailable, so
 * that the client's retries repeat them; refusals have Code.Unauthenticated.
 *
 * Pass it (or its options) as { lnurlAuth } in the client options; the client then sends
 * "Authorization: Bearer <JWT>" and drops the token when the server answers
 * unauthenticated, so that the next attempt logs in again. One LnurlAuth may serve several
 * clients of the same server. It works wherever fetch does: browsers (the issuer allows a
 * page's origin with vss-server --cors-origins) and Node.js.
 */
export class LnurlAuth {
  /** url is the issuer's LNURL endpoint. */
  readonly url: string;
  readonly #linkingKey: Uint8Array | undefined;
  readonly #linkingKeyFor: ((domain: string) => PrivateKey | Promise<PrivateKey>) | undefined;
  readonly #refreshBeforeMs: number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #now: () => Date;

  #token = "";
  /** #dueMs is when the token is due for renewal, in UNIX milliseconds; undefined: never. */
  #dueMs: number | undefined;
  /** #busy is set while a login is in progress; #waiters wait for it to end, in order. */
  #busy = false;
  #waiters: (() => void)[] = [];

  /**
   * The constructor checks the options: url must be an http or https URL, and a linking
   * key (a valid one) or linkingKeyFor must be given. It logs in on first use.
   */
  constructor(options: LnurlAuthOptions) {
    if (!isHttpUrl(options.url)) {
      throw new Error(`LNURL-auth: the URL ${JSON.stringify(options.url)} is not an http or https URL`);
    }
    if (options.linkingKey === undefined && options.linkingKeyFor === undefined) {
      throw new Error("LNURL-auth: want a linkingKey or linkingKeyFor");
    }
    const refreshBeforeMs = options.refreshBeforeMs ?? DEFAULT_REFRESH_BEFORE_MS;
    if (!Number.isFinite(refreshBeforeMs) || refreshBeforeMs < 0) {
      throw new Error(`LNURL-auth: refreshBeforeMs ${refreshBeforeMs} is not a duration of 0 ms or more`);
    }
    this.url = options.url;
    this.#linkingKey = options.linkingKey === undefined ? undefined : secretKeyBytes(options.linkingKey);
    this.#linkingKeyFor = options.linkingKeyFor;
    this.#refreshBeforeMs = refreshBeforeMs;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * token returns the cached token while it is valid, and otherwise logs in for a new one;
   * concurrent calls share one login. signal abandons the wait and the login this call
   * makes. It rejects with a ConnectError: Code.Unavailable when the issuer may recover
   * (retry later), Code.Unauthenticated when it refused the login or answered nonsense,
   * and Code.Canceled or the signal's own ConnectError when signal aborted.
   */
  async token(signal?: AbortSignal): Promise<string> {
    const cached = this.#cached();
    if (cached !== undefined) {
      return cached;
    }
    await this.#acquire(signal);
    try {
      const again = this.#cached(); // another call logged in while this one waited
      if (again !== undefined) {
        return again;
      }
      const { token, expMs } = await this.#login(signal);
      this.#token = token;
      this.#dueMs = expMs === undefined ? undefined : expMs - this.#refreshBeforeMs;
      return token;
    } catch (err) {
      throw err instanceof ConnectError
        ? err
        : new ConnectError(`LNURL-auth: ${describe(err)}`, Code.Unauthenticated, undefined, undefined, err);
    } finally {
      this.#release();
    }
  }

  /**
   * invalidate drops the cached token, so that the next call logs in again. Given a
   * token, it drops the cached token only if it is that one: a call refused with an old
   * token leaves a newer one alone.
   */
  invalidate(token?: string): void {
    if (token === undefined || token === this.#token) {
      this.#token = "";
      this.#dueMs = undefined;
    }
  }

  /** #cached returns the cached token if it is not due for renewal. */
  #cached(): string | undefined {
    if (this.#token === "" || (this.#dueMs !== undefined && this.#now().getTime() >= this.#dueMs)) {
      return undefined;
    }
    return this.#token;
  }

  /** #acquire waits until no other login is in progress, or until signal aborts. */
  #acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) {
      return Promise.reject(abortError(signal));
    }
    if (!this.#busy) {
      this.#busy = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(abortError(signal!));
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** #release hands the login over to the next waiter, if any. */
  #release(): void {
    const next = this.#waiters.shift();
    if (next === undefined) {
      this.#busy = false;
    } else {
      next();
    }
  }

  /**
   * #login gets an LNURL, answers its challenge and returns the token with its exp claim
   * in UNIX milliseconds (undefined when it has none).
   */
  async #login(signal: AbortSignal | undefined): Promise<{ token: string; expMs: number | undefined }> {
    const challenge = await this.#get(this.url, MAX_LNURL_BYTES, signal);
    if (challenge.status !== 200) {
      throw loginError(challenge.status, `LNURL-auth: GET ${this.url}: status ${challenge.status}`);
    }
    const lnurl = challenge.text.trim();
    if (!isHttpUrl(lnurl)) {
      throw unauthenticated(`LNURL-auth: ${this.url} answered ${JSON.stringify(short(lnurl))}, not an LNURL`);
    }
    const parsed = new URL(lnurl);
    const k1 = parsed.searchParams.get("k1") ?? "";
    if (parsed.searchParams.get("tag") !== "login" || !/^[0-9a-fA-F]{64}$/.test(k1)) {
      throw unauthenticated(`LNURL-auth: ${JSON.stringify(short(lnurl))} is not a login LNURL with a 32-byte k1`);
    }
    let secret = this.#linkingKey;
    if (this.#linkingKeyFor !== undefined) {
      const domain = parsed.hostname.replace(/^\[(.*)\]$/, "$1"); // an IPv6 address without brackets
      try {
        secret = secretKeyBytes(await this.#linkingKeyFor(domain));
      } catch (err) {
        throw new ConnectError(`LNURL-auth: linking key for ${domain}: ${describe(err)}`, Code.Unauthenticated, undefined, undefined, err);
      }
    }
    // LUD-05: k1 itself is the message digest; the signature is DER encoded and low S.
    const sig = secp256k1.sign(hexToBytes(k1), secret!, { prehash: false, lowS: true, format: "der", extraEntropy: false });
    const key = secp256k1.getPublicKey(secret!, true);
    const signed = `${lnurl}&sig=${bytesToHex(sig)}&key=${bytesToHex(key)}`;

    const { status, text } = await this.#get(signed, MAX_ANSWER_BYTES, signal);
    const answer = parseAnswer(text);
    if (status !== 200 || !answer.json || answer.token === "" || answer.status.toUpperCase() === "ERROR") {
      throw loginError(
        status,
        answer.reason !== "" ? `LNURL-auth refused (status ${status}): ${answer.reason}` : `LNURL-auth: status ${status} without a token`,
      );
    }
    let expMs: number | undefined;
    try {
      expMs = tokenExpiryMs(answer.token);
    } catch (err) {
      throw unauthenticated(`LNURL-auth: ${describe(err)}`);
    }
    return { token: answer.token, expMs };
  }

  /**
   * #get fetches url and returns its status and at most limit bytes of its body, as
   * text. A network failure is unavailable, so that the client retries it.
   */
  async #get(url: string, limit: number, signal: AbortSignal | undefined): Promise<{ status: number; text: string }> {
    try {
      const fetch = this.#fetch; // called without this: a browser's fetch refuses any other
      const res = await fetch(url, { method: "GET", redirect: "follow", signal });
      return { status: res.status, text: await readText(res, limit) };
    } catch (err) {
      if (signal?.aborted) {
        throw abortError(signal);
      }
      throw new ConnectError(`LNURL-auth: GET ${short(url)}: ${describe(err)}`, Code.Unavailable, undefined, undefined, err);
    }
  }
}

/**
 * lnurlAuth returns an interceptor that sends "Authorization: Bearer <JWT>" with the
 * token of an LnurlAuth (made from options, or shared), logging in when there is none,
 * and drops the token when the server answers unauthenticated (for a stream, also when
 * the refusal ends it), so that the next attempt logs in again.
 */
export function lnurlAuth(auth: LnurlAuth | LnurlAuthOptions): Interceptor {
  const provider = auth instanceof LnurlAuth ? auth : new LnurlAuth(auth);
  return (next) => async (req) => {
    const token = await provider.token(req.signal);
    req.header.set("Authorization", "Bearer " + token);
    const refused = (err: unknown) => {
      if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
        provider.invalidate(token);
      }
    };
    let res;
    try {
      res = await next(req);
    } catch (err) {
      refused(err);
      throw err;
    }
    if (!res.stream) {
      return res;
    }
    const messages = res.message;
    const watched: typeof messages = (async function* () {
      try {
        yield* messages;
      } catch (err) {
        refused(err);
        throw err;
      }
    })();
    return { ...res, message: watched } as typeof res;
  };
}

/** isHttpUrl reports whether s is an absolute http or https URL with a host. */
function isHttpUrl(s: string): boolean {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
}

/**
 * readText reads at most limit bytes of the body of res, as UTF-8 text, and abandons the
 * rest.
 */
async function readText(res: Response, limit: number): Promise<string> {
  if (res.body === null) {
    return "";
  }
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) {
        break;
      }
      chunks.push(value);
      size += value.length;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return new TextDecoder().decode(concatBytes(...chunks).subarray(0, limit));
}

/**
 * parseAnswer reads the issuer's answer to the signed LNURL. json is false when it is
 * not a JSON object whose status, token and reason are strings (where present).
 */
function parseAnswer(text: string): { json: boolean; status: string; token: string; reason: string } {
  const answer = { json: false, status: "", token: "", reason: "" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return answer;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return answer;
  }
  answer.json = true;
  const fields = value as Record<string, unknown>;
  for (const name of ["status", "token", "reason"] as const) {
    const field = fields[name];
    if (typeof field === "string") {
      answer[name] = field;
    } else if (field !== undefined && field !== null) {
      answer.json = false;
    }
  }
  return answer;
}

/**
 * tokenExpiryMs reads the exp claim of a JWT, in UNIX milliseconds, without verifying the
 * token (the server does), as vss-client-ng does. It returns undefined for a token
 * without exp.
 */
function tokenExpiryMs(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw new Error("the token is not a JWT");
  }
  let payload: string;
  try {
    if (!/^[A-Za-z0-9_-]*=*$/.test(parts[1]!)) {
      throw new Error("not base64url");
    }
    payload = new TextDecoder("utf-8", { fatal: true }).decode(base64Decode(parts[1]!));
  } catch {
    throw new Error("the token's payload is not base64url");
  }
  let claims: unknown;
  try {
    claims = JSON.parse(payload);
  } catch {
    claims = undefined;
  }
  if (typeof claims !== "object" || claims === null || Array.isArray(claims)) {
    throw new Error("the token's payload is not a JSON object with a numeric exp");
  }
  const exp = (claims as Record<string, unknown>)["exp"];
  if (exp === undefined || exp === null) {
    return undefined;
  }
  if (typeof exp !== "number" || !Number.isFinite(exp)) {
    throw new Error("the token's payload is not a JSON object with a numeric exp");
  }
  return Math.trunc(exp) * 1000;
}

/**
 * loginError gives a refused login its code: the issuer's failures (5xx, 429) may pass
 * and are unavailable; every other refusal is unauthenticated.
 */
function loginError(status: number, message: string): ConnectError {
  return new ConnectError(message, status >= 500 || status === 429 ? Code.Unavailable : Code.Unauthenticated);
}

/** unauthenticated returns a ConnectError with Code.Unauthenticated. */
function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

/**
 * abortError is the error of a login that signal ended: the signal's reason if it is a
 * ConnectError (such as the retry interceptor's timeout), Code.Canceled otherwise.
 */
function abortError(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason, Code.Canceled);
}

/** describe returns the message of err and of its cause, if it has one. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) {
    return String(err);
  }
  const cause = err.cause instanceof Error ? err.cause.message : undefined;
  return cause === undefined || err.message.includes(cause) ? err.message : `${err.message}: ${cause}`;
}

/** short cuts s for an error message. */
function short(s: string): string {
  return s.length > 100 ? s.slice(0, 100) + "…" : s;
}
