package lnurlauth

import (
	"bytes"
	"encoding/hex"
	"net/url"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// maxDERSignatureLen is the length of the longest DER signature over secp256k1: two
// 33-byte integers with their headers and the sequence header.
const maxDERSignatureLen = 72

// proof is the parsed query of a call to the LNURL: a challenge, its signature and the
// linking key that made it.
type proof struct {
	k1  [k1Len]byte
	sig *ecdsa.Signature
	key *secp256k1.PublicKey
}

// parseProof parses and validates the query string of a call to VerifyPath. It checks
// the form of every parameter, not the challenge nor the signature; every error is a
// *refusal with status 400.
func parseProof(rawQuery string) (proof, error) {
	var p proof
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, badRequest("malformed query string")
	}

	tag, err := param(q, "tag")
	if err != nil {
		return p, err
	}
	if tag != "login" {
		return p, badRequest(`tag must be "login"`)
	}

	k1Hex, err := param(q, "k1")
	if err != nil {
		return p, err
	}
	if len(k1Hex) != 2*k1Len {
		return p, badRequest("k1 must be 64 hex digits")
	}
	if _, err := hex.Decode(p.k1[:], []byte(k1Hex)); err != nil {
		return p, badRequest("k1 must be 64 hex digits")
	}

	sigHex, err := param(q, "sig")
	if err != nil {
		return p, err
	}
	der, err := hex.DecodeString(sigHex)
	if err != nil || len(der) > maxDERSignatureLen {
		return p, badRequest("sig must be the hex of a DER-encoded ECDSA signature")
	}
	// ParseDERSignature enforces strict DER: minimal lengths and integers, no trailing
	// bytes, r and s in [1, n-1].
	if p.sig, err = ecdsa.ParseDERSignature(der); err != nil {
		return p, badRequest("sig must be the hex of a DER-encoded ECDSA signature")
	}
	// Serialize writes the canonical form, with the low S of the pair (s, n-s); a
	// signature that differs from it has a high S, which libsecp256k1 neither makes nor
	// accepts.
	if !bytes.Equal(p.sig.Serialize(), der) {
		return p, badRequest("sig must have a low S value, as libsecp256k1 makes")
	}

	keyHex, err := param(q, "key")
	if err != nil {
		return p, err
	}
	key, err := hex.DecodeString(keyHex)
	if err != nil || len(key) != secp256k1.PubKeyBytesLenCompressed ||
		(key[0] != secp256k1.PubKeyFormatCompressedEven && key[0] != secp256k1.PubKeyFormatCompressedOdd) {
		return p, badRequest("key must be the hex of a 33-byte compressed secp256k1 public key")
	}
	if p.key, err = secp256k1.ParsePubKey(key); err != nil {
		return p, badRequest("key is not a point of secp256k1")
	}
	return p, nil
}

// param returns the only value of the query parameter name, which must be present,
// non-empty and not repeated.
func param(q url.Values, name string) (string, error) {
	switch vs := q[name]; {
	case len(vs) == 0 || vs[0] == "":
		return "", badRequest(name + " is missing")
	case len(vs) > 1:
		return "", badRequest(name + " is repeated")
	default:
		return vs[0], nil
	}
}
