package lnurlauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// generateSigningKey returns a new ECDSA P-256 private key in PKCS #8 DER.
func generateSigningKey() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(key)
}

// parseSigningKey parses an ECDSA P-256 private key in PKCS #8, DER or PEM ("PRIVATE
// KEY"), as generateSigningKey makes it or an operator may store it.
func parseSigningKey(data []byte) (*ecdsa.PrivateKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("PEM block %q is not a PKCS #8 PRIVATE KEY", block.Type)
		}
		data = block.Bytes
	}
	key, err := x509.ParsePKCS8PrivateKey(data)
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 private key, as ES256 needs")
	}
	return ec, nil
}

// thumbprint returns the RFC 7638 JWK thumbprint of a P-256 public key: the base64url
// (unpadded) SHA-256 of its JWK members crv, kty, x and y, in that order, without
// whitespace.
func thumbprint(pub *ecdsa.PublicKey) (string, error) {
	k, err := pub.ECDH()
	if err != nil {
		return "", err
	}
	point := k.Bytes() // 0x04 ‖ x ‖ y, each 32 bytes
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := `{"crv":"P-256","kty":"EC","x":"` + b64(point[1:33]) + `","y":"` + b64(point[33:]) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return b64(sum[:]), nil
}
