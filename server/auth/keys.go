package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MinRSABits is the smallest RSA modulus accepted for RS256.
const MinRSABits = 2048

// The JWS algorithms this package accepts, each pinned to one key type.
const (
	algRS256 = "RS256" // *rsa.PublicKey of at least MinRSABits
	algES256 = "ES256" // *ecdsa.PublicKey on P-256
	algEdDSA = "EdDSA" // ed25519.PublicKey
)

// acceptedAlgs lists the algorithms above, for jwt.WithValidMethods.
func acceptedAlgs() []string { return []string{algRS256, algES256, algEdDSA} }

// ParsePublicKeys parses the PEM public keys in pemData, which may hold several blocks:
// "PUBLIC KEY" (SPKI) blocks with an RSA, EC P-256 or Ed25519 key, and "RSA PUBLIC KEY"
// (PKCS#1) blocks. RSA keys must have at least MinRSABits bits. Text between blocks is
// ignored; any other block type, a malformed block, an unsupported key, or data with no
// block at all is an error.
func ParsePublicKeys(pemData []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	rest := pemData
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var key crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			return nil, fmt.Errorf("PEM block %d is a %q; want \"PUBLIC KEY\" or \"RSA PUBLIC KEY\"", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		if _, _, err := verificationKey(key); err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, key)
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("malformed PEM block after %d valid key(s)", len(keys))
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// verificationKey checks that key is one this package verifies JWTs with and returns it
// with the only algorithm it may verify. A private key stands for its public key.
func verificationKey(key crypto.PublicKey) (alg string, pub crypto.PublicKey, err error) {
	if priv, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = priv.Public()
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return "", nil, errors.New("empty RSA public key")
		}
		if bits := k.N.BitLen(); bits < MinRSABits {
			return "", nil, fmt.Errorf("RSA key has %d bits; at least %d are required", bits, MinRSABits)
		}
		return algRS256, k, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return "", nil, errors.New("empty EC public key")
		}
		if k.Curve != elliptic.P256() {
			return "", nil, fmt.Errorf("EC key is on curve %s; only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return algES256, k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", nil, fmt.Errorf("invalid Ed25519 public key: %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return algEdDSA, k, nil
	case nil:
		return "", nil, errors.New("nil key")
	default:
		return "", nil, fmt.Errorf("unsupported key type %T: want RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)", key)
	}
}
