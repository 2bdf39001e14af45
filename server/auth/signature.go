package auth

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/govss/vss/client/sigauth"
	"github.com/govss/vss/server"
)

// SigningConstant is the 64-byte prefix of every message signed by the signature
// scheme: the words, then dots up to 64 bytes, exactly as the reference client and
// server use it. The format is defined once, in package sigauth.
const SigningConstant = sigauth.SigningConstant

// SignatureMaxSkew is how far the signing time of a signature header may be from the
// server's clock, in either direction.
const SignatureMaxSkew = 24 * time.Hour

// The layout of the signature header: public key hex, signature hex, then the time.
const (
	pubKeyHexLen    = sigauth.PubKeyHexLen    // 66
	sigHexLen       = sigauth.SignatureHexLen // 128: r || s
	maxTimeLen      = sigauth.MaxTimeLen      // the digits of the largest int64
	minSignatureLen = pubKeyHexLen + sigHexLen + 1
	maxSignatureLen = pubKeyHexLen + sigHexLen + maxTimeLen
)

// verifiedHeaders is how many signature headers that verified are remembered. The
// reference client signs each request with the current UNIX second, deterministically,
// so every request a wallet makes within one second carries the same header; a wallet
// starting up makes thousands. 16,384 headers take a few MiB.
const verifiedHeaders = 16384

// signatureAuth is the authorizer NewSignature returns.
type signatureAuth struct {
	now func() time.Time
	// verified maps headers whose signature verified to their user. A signature that
	// verified once always does, so a repeated header skips the curve arithmetic (the
	// server's largest CPU cost per request otherwise); its time is checked every time.
	verified *lru.Cache[string, string]
}

// NewSignature returns the reference server's default authorizer. The Authorization
// header is the hex of a 33-byte compressed secp256k1 public key (66 characters), the hex
// of a 64-byte compact ECDSA signature r || s (128 characters), then the signing time in
// decimal UNIX seconds. The signature covers SHA-256(SigningConstant || public key bytes
// || the time as sent), and the time must be within SignatureMaxSkew of now().
//
// The user identity is the public key in lowercase hex, whatever case the client sent,
// so one key always maps to one user; this matches the reference server, which prints
// the parsed key. Only low-S signatures are accepted, as in libsecp256k1, which the
// reference client and server use: every header the reference client makes passes
// here, and a header this server accepts passes the reference server too (which is
// laxer about the time, accepting a sign before it).
//
// now is the server's clock (time.Now in production; nil means time.Now).
func NewSignature(now func() time.Time) server.Authorizer {
	if now == nil {
		now = time.Now
	}
	verified, err := lru.New[string, string](verifiedHeaders)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &signatureAuth{now: now, verified: verified}
}

// Authorize checks the signature header of a request and returns the signer's public
// key in lowercase hex.
func (s *signatureAuth) Authorize(_ context.Context, header http.Header) (string, error) {
	value, ok, err := authorization(header)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", server.AuthError("missing Authorization header: send the signature header (public key, signature and time)")
	}
	if isBearer(value) {
		return "", server.AuthError("bearer tokens are not accepted by this server: send the signature header (public key, signature and time)")
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x21 || c > 0x7e {
			return "", server.AuthError("signature Authorization header contains spaces, control or non-ASCII characters")
		}
	}
	if len(value) < minSignatureLen {
		return "", server.AuthError("signature Authorization header is too short: want 66 hex characters of public key, 128 of signature, then the UNIX time")
	}
	if len(value) > maxSignatureLen {
		return "", server.AuthError("signature Authorization header is too long: want 66 hex characters of public key, 128 of signature, then the UNIX time (at most 19 digits)")
	}
	pubHex, sigHex, timeStr := value[:pubKeyHexLen], value[pubKeyHexLen:pubKeyHexLen+sigHexLen], value[pubKeyHexLen+sigHexLen:]
	if user, ok := s.verified.Get(value); ok {
		if err := checkSigningTime(timeStr, s.now()); err != nil {
			return "", err
		}
		return user, nil
	}

	pubBytes, err := hex.DecodeString(pubHex)
	if err != nil {
		return "", server.AuthError("public key in the Authorization header is not hexadecimal")
	}
	sigBytes, err := hex.DecodeString(sigHex)
	if err != nil {
		return "", server.AuthError("signature in the Authorization header is not hexadecimal")
	}
	if p := pubBytes[0]; p != secp256k1.PubKeyFormatCompressedEven && p != secp256k1.PubKeyFormatCompressedOdd {
		return "", server.AuthError("public key in the Authorization header is not a compressed secp256k1 key: it must start with 02 or 03")
	}
	pub, err := secp256k1.ParsePubKey(pubBytes)
	if err != nil {
		return "", server.AuthError("public key in the Authorization header is not a point on the secp256k1 curve")
	}
	sig, err := parseCompactSignature(sigBytes)
	if err != nil {
		return "", err
	}

	if err := checkSigningTime(timeStr, s.now()); err != nil {
		return "", err
	}
	if !sig.Verify(sigauth.Digest(pubBytes, timeStr), pub) {
		return "", server.AuthError("signature in the Authorization header does not verify for its public key and time")
	}
	user := hex.EncodeToString(pubBytes)
	s.verified.Add(value, user)
	return user, nil
}

// checkSigningTime checks that the signing time of a header is a decimal number of UNIX
// seconds within SignatureMaxSkew of now.
func checkSigningTime(timeStr string, now time.Time) error {
	for i := 0; i < len(timeStr); i++ {
		if c := timeStr[i]; c < '0' || c > '9' {
			return server.AuthError("signing time in the Authorization header is not a decimal number of UNIX seconds")
		}
	}
	nowSec := now.Unix()
	maxSkew := int64(SignatureMaxSkew / time.Second)
	signed, err := strconv.ParseInt(timeStr, 10, 64)
	if err != nil || signed > nowSec+maxSkew { // only a value beyond int64 fails to parse
		return server.AuthError("signing time in the Authorization header is more than 24 hours in the future: check the client's clock")
	}
	if signed < nowSec-maxSkew {
		return server.AuthError("signing time in the Authorization header is more than 24 hours in the past: sign each request with the current time")
	}

	return nil
}

// parseCompactSignature parses a 64-byte r || s signature, rejecting values outside
// [1, n-1] and, as libsecp256k1 does, signatures whose s is above n/2 (high-S).
func parseCompactSignature(b []byte) (*ecdsa.Signature, error) {
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(b[:32]) || s.SetByteSlice(b[32:]) {
		return nil, server.AuthError("malformed signature in the Authorization header: r or s is not below the curve order")
	}
	if r.IsZero() || s.IsZero() {
		return nil, server.AuthError("malformed signature in the Authorization header: r or s is zero")
	}
	if s.IsOverHalfOrder() {
		return nil, server.AuthError("signature in the Authorization header is not in low-S form (as libsecp256k1 requires): use s = n - s")
	}
	return ecdsa.NewSignature(&r, &s), nil
}

// SignatureHeader returns the Authorization header value the signature scheme expects
// from the holder of priv at time now: what the reference Rust client sends. The
// signature is deterministic (RFC 6979, as libsecp256k1 signs) and low-S. It is
// sigauth.Header, which the Go client uses too.
func SignatureHeader(priv *secp256k1.PrivateKey, now time.Time) string {
	return sigauth.Header(priv, now)
}
