import type { Interceptor } from "@connectrpc/connect";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, concatBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { secretKeyBytes, type PrivateKey } from "./keys.js";
import { lnurlAuth, type LnurlAuth, type LnurlAuthOptions } from "./lnurl.js";

export type { PrivateKey } from "./keys.js";

/**
 * SIGNING_CONSTANT is the 64-byte ASCII prefix of every message the signature scheme
 * signs: the words, then dots up to 64 bytes.
 */
export const SIGNING_CONSTANT = "VSS Signature Authorizer Signing Salt Constant..................";

/**
 * VssAuth selects how a client authenticates: a secp256k1 private key that signs every
 * request (the signature scheme), a bearer token (a JWT, or a function that returns the
 * current one), or LNURL-auth (a JWT that an LnurlAuth fetches from an LNURL-auth issuer
 * with a linking key, caches and renews; pass its options, or an LnurlAuth to share its
 * token between clients).
 */
export type VssAuth =
  | { privateKey: PrivateKey; now?: () => Date }
  | { bearerToken: string | (() => string | Promise<string>) }
  | { lnurlAuth: LnurlAuthOptions | LnurlAuth };

/**
 * publicKeyHex returns the compressed public key of a private key in lowercase hex
 * (66 characters): the user identity the signature scheme gives its holder.
 */
export function publicKeyHex(privateKey: PrivateKey): string {
  return bytesToHex(secp256k1.getPublicKey(secretKeyBytes(privateKey), true));
}

/**
 * signatureHeader returns the Authorization header value of the signature scheme for the
 * holder of privateKey at time now: the compressed public key in hex (66 characters), a
 * 64-byte compact ECDSA signature r || s in hex (128 characters), then the time in decimal
 * UNIX seconds. The signature covers SHA-256(SIGNING_CONSTANT || public key || time) and is
 * deterministic (RFC 6979) and low-S, exactly as the reference client signs.
 */
export function signatureHeader(privateKey: PrivateKey, now: Date = new Date()): string {
  const secret = secretKeyBytes(privateKey);
  const publicKey = secp256k1.getPublicKey(secret, true);
  const time = Math.floor(now.getTime() / 1000).toString(10);
  const digest = sha256(concatBytes(utf8ToBytes(SIGNING_CONSTANT), publicKey, utf8ToBytes(time)));
  const signature = secp256k1.sign(digest, secret, {
    prehash: false,
    lowS: true,
    format: "compact",
    extraEntropy: false,
  });
  return bytesToHex(publicKey) + bytesToHex(signature) + time;
}

/**
 * signatureAuth returns an interceptor that signs every request with privateKey. Requests
 * made within the same second share one header, since the signature is deterministic.
 */
export function signatureAuth(privateKey: PrivateKey, now: () => Date = () => new Date()): Interceptor {
  const secret = secretKeyBytes(privateKey);
  let lastSecond = NaN;
  let lastHeader = "";
  return (next) => async (req) => {
    const at = now();
    const second = Math.floor(at.getTime() / 1000);
    if (second !== lastSecond) {
      lastHeader = signatureHeader(secret, at);
      lastSecond = second;
    }
    req.header.set("Authorization", lastHeader);
    return next(req);
  };
}

/**
 * bearerAuth returns an interceptor that sends "Authorization: Bearer <token>". token may
 * be a function, called for every request, so that a caller can refresh expiring tokens.
 */
export function bearerAuth(token: string | (() => string | Promise<string>)): Interceptor {
  return (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    req.header.set("Authorization", "Bearer " + value);
    return next(req);
  };
}

/**
 * authInterceptor returns the interceptor for auth: signatureAuth for a private key,
 * bearerAuth for a bearer token, lnurlAuth for LNURL-auth.
 */
export function authInterceptor(auth: VssAuth): Interceptor {
  if ("privateKey" in auth) {
    return signatureAuth(auth.privateKey, auth.now);
  }
  if ("lnurlAuth" in auth) {
    return lnurlAuth(auth.lnurlAuth);
  }
  return bearerAuth(auth.bearerToken);
}
