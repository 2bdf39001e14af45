package auth

import (
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/server"
)

// FuzzSignatureAuthorize feeds arbitrary Authorization headers to the signature scheme:
// it never panics, every rejection is an AuthError, and an accepted header names its
// own public key.
func FuzzSignatureAuthorize(f *testing.F) {
	f.Add(vectorHeader)
	f.Add(strings.ToUpper(vectorHeader))
	f.Add(vectorHeader[:194] + "1700000001")
	f.Add(vectorHeader[:194] + "+700000000")
	f.Add(vectorHeader[:66] + strings.Repeat("0", 128) + "1700000000")
	f.Add("04" + vectorHeader[2:])
	f.Add("Bearer x")
	f.Add("")
	a := NewSignature(fixedClock(vectorTime))
	f.Fuzz(func(t *testing.T, header string) {
		user, err := authorize(a, header)
		if err != nil {
			authMessage(t, err)
			return
		}
		if len(user) != 66 || user != strings.ToLower(header[:66]) {
			t.Fatalf("accepted %q as user %q", header, user)
		}
		if _, err := hex.DecodeString(user); err != nil {
			t.Fatalf("user %q is not hex", user)
		}
	})
}

// FuzzJWTAuthorize feeds arbitrary bearer tokens to the JWT scheme: it never panics,
// every rejection is an AuthError, and an accepted token yields a usable user identity.
func FuzzJWTAuthorize(f *testing.F) {
	keys := newTestKeys(f)
	a := newTestJWT(f, JWTConfig{Keys: keys.public()})
	f.Add(sign(f, jwt.SigningMethodRS256, keys.rsa, validClaims(), nil))
	f.Add(sign(f, jwt.SigningMethodES256, keys.ec, validClaims(), map[string]any{"kid": "k"}))
	f.Add(sign(f, jwt.SigningMethodEdDSA, keys.ed, validClaims(), nil))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("secret"), validClaims(), nil))
	f.Add(rawToken(`{"alg":"none"}`, `{"sub":"u","exp":1700003600}`, nil))
	f.Add(rawToken(`{"alg":"ES256","crit":["x"]}`, `{"sub":"u","exp":1e400}`, []byte("sig")))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		user, err := authorize(a, "Bearer "+token)
		if err != nil {
			authMessage(t, err)
			return
		}
		if user == "" || utf8.RuneCountInString(user) > server.MaxUserLength {
			t.Fatalf("accepted user %q", user)
		}
	})
}
