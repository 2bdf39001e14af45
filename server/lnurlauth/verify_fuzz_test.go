package lnurlauth

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/storage/sqlite"
)

// FuzzVerify sends arbitrary queries to the verify step of an issuer with a store (the
// LNURL-auth parameters tag, k1, sig and key as a wallet sends them): a refusal is a 400
// or 403 with a reason, never an internal failure; a token is issued only for a k1 this
// issuer made, signed by the given key, and names that key; and the same proof is
// refused when it comes again.
func FuzzVerify(f *testing.F) {
	store, err := sqlite.OpenMemory(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	iss, err := New(f.Context(), Config{PublicURL: "https://vss.example.com", Store: store})
	if err != nil {
		f.Fatal(err)
	}
	key := secp256k1.PrivKeyFromBytes(bytes.Repeat([]byte{0x2a}, 32))
	proof := func(k1 []byte) string {
		return query("tag", "login", "k1", hex.EncodeToString(k1), "sig", hex.EncodeToString(ecdsa.Sign(key, k1).Serialize()), "key", keyHex(key))
	}
	// Challenges of this issuer (valid in the process that fuzzes) and forged ones.
	for range 3 {
		k1 := iss.newChallenge(time.Now())
		f.Add(proof(k1[:]))
	}
	f.Add(proof(bytes.Repeat([]byte{0x11}, 32)))
	expired := iss.newChallenge(time.Now().Add(-time.Hour))
	f.Add(proof(expired[:]))
	f.Add("tag=login&k1=00&sig=00&key=00")
	f.Add("")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		token, sub, err := iss.verify(t.Context(), rawQuery)
		if err != nil {
			var r *refusal
			if !errors.As(err, &r) || (r.status != 400 && r.status != 403) || r.reason == "" {
				t.Fatalf("verify(%q) = %v, want a 400 or 403 refusal", rawQuery, err)
			}
			return
		}
		p, err := parseProof(rawQuery)
		if err != nil {
			t.Fatalf("issued a token for %q, which does not parse: %v", rawQuery, err)
		}
		if _, err := iss.openChallenge(p.k1, time.Now()); err != nil {
			t.Fatalf("issued a token for a challenge it did not make or that expired: %v", err)
		}
		if !p.sig.Verify(p.k1[:], p.key) {
			t.Fatalf("issued a token for a signature that does not verify: %q", rawQuery)
		}
		if sub != hex.EncodeToString(p.key.SerializeCompressed()) {
			t.Fatalf("token subject %q for key %x", sub, p.key.SerializeCompressed())
		}
		claims := &jwt.RegisteredClaims{}
		if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return crypto.PublicKey(iss.PublicKey()), nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer("https://vss.example.com")); err != nil || claims.Subject != sub {
			t.Fatalf("issued token %q does not verify for %s: %v", token, sub, err)
		}
		_, _, err = iss.verify(t.Context(), rawQuery)
		var r *refusal
		if !errors.As(err, &r) || r.status != 403 || !strings.Contains(r.reason, "already used") {
			t.Fatalf("the same proof came again: %v, want a 403 refusal", err)
		}
	})
}
