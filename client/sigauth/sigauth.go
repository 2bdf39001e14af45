// Package sigauth makes the Authorization header of the VSS signature scheme, the
// default of the reference VSS server and of vss-client-ng's SigsAuthProvider. The
// header is the hex of a 33-byte compressed secp256k1 public key (66 characters), the
// hex of a 64-byte compact ECDSA signature r || s (128 characters), then the signing
// time in decimal UNIX seconds. The signature covers
// SHA-256(SigningConstant || public key bytes || the time as sent).
//
// The package is the one definition of the format: the Go client signs with it and
// the server verifies against Digest. It depends only on the secp256k1 package.
package sigauth

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// SigningConstant is the 64-byte prefix of every signed message: the words, then dots
// up to 64 bytes, exactly as the reference client and server use it.
const SigningConstant = "VSS Signature Authorizer Signing Salt Constant.................."

// Lengths of the parts of a header.
const (
	// PubKeyHexLen is the length of the public key part: 33 bytes in hex.
	PubKeyHexLen = 2 * secp256k1.PubKeyBytesLenCompressed
	// SignatureHexLen is the length of the signature part: r || s, 64 bytes in hex.
	SignatureHexLen = 2 * 64
	// MaxTimeLen is the longest time part: the digits of the largest int64.
	MaxTimeLen = 19
)

// Digest returns the SHA-256 digest the scheme signs for the compressed public key
// pubKey and the signing time timeStr, as it appears in the header.
func Digest(pubKey []byte, timeStr string) []byte {
	h := sha256.New()
	h.Write([]byte(SigningConstant))
	h.Write(pubKey)
	h.Write([]byte(timeStr))
	return h.Sum(nil)
}

// Header returns the Authorization header value that the holder of priv sends at time
// now: what the reference Rust client sends. The signature is deterministic (RFC 6979,
// as libsecp256k1 signs) and low-S. The server accepts it for 24 hours either side of
// now, so a client signs each request afresh.
func Header(priv *secp256k1.PrivateKey, now time.Time) string {
	pub := priv.PubKey().SerializeCompressed()
	timeStr := strconv.FormatInt(now.Unix(), 10)
	sig := ecdsa.Sign(priv, Digest(pub, timeStr))
	r, s := sig.R(), sig.S()
	rb, sb := r.Bytes(), s.Bytes()
	out := make([]byte, 0, PubKeyHexLen+SignatureHexLen+MaxTimeLen)
	out = hex.AppendEncode(out, pub)
	out = hex.AppendEncode(out, rb[:])
	out = hex.AppendEncode(out, sb[:])
	return string(append(out, timeStr...))
}
