package auth

import (
	"context"
	"crypto"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/server"
)

// named is an Authorizer that accepts every request as its own name.
func named(name string) server.Authorizer {
	return server.AuthorizerFunc(func(context.Context, http.Header) (string, error) { return name, nil })
}

func TestCombineRouting(t *testing.T) {
	t.Parallel()
	both := Combine(named("bearer"), named("other"))
	noBearer := Combine(nil, named("other"))
	onlyBearer := Combine(named("bearer"), nil)
	tests := []struct {
		name   string
		a      server.Authorizer
		values []string
		user   string
		want   string
	}{
		{"Bearer", both, []string{"Bearer x.y.z"}, "bearer", ""},
		{"bearer lowercase", both, []string{"bearer x.y.z"}, "bearer", ""},
		{"BeArEr mixed case", both, []string{"BeArEr x.y.z"}, "bearer", ""},
		{"Bearer without token", both, []string{"Bearer"}, "bearer", ""},
		{"signature header", both, []string{vectorHeader}, "other", ""},
		{"scheme prefix only", both, []string{"Bearerx.y.z"}, "other", ""},
		{"Basic", both, []string{"Basic dXNlcjpwYXNz"}, "other", ""},
		{"no header", both, nil, "other", ""},
		{"bearer refused", noBearer, []string{"Bearer x.y.z"}, "", "bearer tokens are not accepted by this server"},
		{"signature without bearer", noBearer, []string{vectorHeader}, "other", ""},
		{"signature refused", onlyBearer, []string{vectorHeader}, "", "requires a bearer token"},
		{"no header refused", onlyBearer, nil, "", "requires a bearer token"},
		{"bearer with only bearer", onlyBearer, []string{"Bearer x.y.z"}, "bearer", ""},
	}
	for _, tt := range tests {
		user, err := authorize(tt.a, tt.values...)
		if tt.want == "" {
			if err != nil || user != tt.user {
				t.Errorf("%s: Authorize = %q, %v; want %q", tt.name, user, err, tt.user)
			}
			continue
		}
		if msg := authMessage(t, mustFail(user, err)); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q does not contain %q", tt.name, msg, tt.want)
		}
	}
}

// TestCombineSignatureAndJWT runs the two real schemes side by side, as the server does.
func TestCombineSignatureAndJWT(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	j := newTestJWT(t, JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}, Now: func() time.Time { return time.Unix(vectorTime, 0) }})
	a := Combine(j, NewSignature(fixedClock(vectorTime)))

	if user, err := authorize(a, vectorHeader); err != nil || user != vectorUser {
		t.Fatalf("signature: Authorize = %q, %v", user, err)
	}
	if user, err := authorize(a, "Bearer "+sign(t, jwt.SigningMethodES256, key, validClaims(), nil)); err != nil || user != "user-1" {
		t.Fatalf("JWT: Authorize = %q, %v", user, err)
	}
	if msg := authMessage(t, mustFail(authorize(a))); !strings.Contains(msg, "missing Authorization header") {
		t.Fatalf("no header: message %q", msg)
	}
	if msg := authMessage(t, mustFail(authorize(a, "Bearer garbage"))); !strings.Contains(msg, "malformed bearer token") {
		t.Fatalf("bad token: message %q", msg)
	}
}

// withSub returns validClaims with sub set.
func withSub(sub string) jwt.MapClaims {
	c := validClaims()
	c["sub"] = sub
	return c
}

// TestCombineKeepsIdentitiesApart checks the one rule that keeps identities from
// crossing schemes: a bearer token may name a public key as its user only when its
// subject is proven, as soon as this server proves keys itself.
func TestCombineKeepsIdentitiesApart(t *testing.T) {
	t.Parallel()
	external, issuer := newEC(t), newEC(t)
	const issuerKID = "lnurl-issuer"
	ext := []crypto.PublicKey{&external.PublicKey}
	proving := map[string]crypto.PublicKey{issuerKID: &issuer.PublicKey}
	signature := NewSignature(fixedClock(vectorTime))
	jwtOnly := newTestJWT(t, JWTConfig{Keys: ext})
	withIssuer := newTestJWT(t, JWTConfig{Keys: ext, ProvingKeys: proving})
	trusted := newTestJWT(t, JWTConfig{Keys: ext, KeySubjectsProven: true})

	fromExternal := func(sub string) string { return sign(t, jwt.SigningMethodES256, external, withSub(sub), nil) }
	fromIssuer := sign(t, jwt.SigningMethodES256, issuer, withSub(vectorUser), map[string]any{"kid": issuerKID})
	// Another key of the same shape as vectorUser, and ones that only look alike.
	otherKey := "02" + strings.Repeat("ab", 32)
	upper := strings.ToUpper(vectorUser)

	const refused = "form of a secp256k1 public key"
	tests := []struct {
		name   string
		a      server.Authorizer
		header string
		user   string // "" when refused
		want   string
	}{
		// Signature and JWT side by side: key subjects of external tokens are refused.
		{"mixed: signature user", Combine(jwtOnly, signature), vectorHeader, vectorUser, ""},
		{"mixed: JWT claiming the signature user's key", Combine(jwtOnly, signature), "Bearer " + fromExternal(vectorUser), "", refused},
		{"mixed: JWT claiming any key", Combine(jwtOnly, signature), "Bearer " + fromExternal(otherKey), "", refused},
		{"mixed: JWT with an ordinary sub", Combine(jwtOnly, signature), "Bearer " + fromExternal("user-1"), "user-1", ""},
		{"mixed: uppercase hex is another identity", Combine(jwtOnly, signature), "Bearer " + fromExternal(upper), upper, ""},
		{"mixed: 04 prefix is no signature identity", Combine(jwtOnly, signature), "Bearer " + fromExternal("04"+vectorUser[2:]), "04" + vectorUser[2:], ""},
		{"mixed: proven by this server's issuer", Combine(withIssuer, signature), "Bearer " + fromIssuer, vectorUser, ""},
		{"mixed: issuers declared to prove keys", Combine(trusted, signature), "Bearer " + fromExternal(vectorUser), vectorUser, ""},
		{"mixed: external key under the issuer's kid", Combine(withIssuer, signature),
			"Bearer " + sign(t, jwt.SigningMethodES256, external, withSub(vectorUser), map[string]any{"kid": issuerKID}), "", "signature is invalid"},
		{"mixed: issuer's key without its kid", Combine(withIssuer, signature),
			"Bearer " + sign(t, jwt.SigningMethodES256, issuer, withSub(vectorUser), nil), "", "signature is invalid"},

		// JWT only, with this server's LNURL-auth issuer beside external keys: the same.
		{"jwt+issuer: external JWT claiming a key", Combine(withIssuer, nil), "Bearer " + fromExternal(vectorUser), "", refused},
		{"jwt+issuer: proven key", Combine(withIssuer, nil), "Bearer " + fromIssuer, vectorUser, ""},
		{"jwt+issuer: ordinary sub", Combine(withIssuer, nil), "Bearer " + fromExternal("user-1"), "user-1", ""},

		// One scheme and no proven keys, as on the reference server: raw identities.
		{"jwt only: key-shaped sub", Combine(jwtOnly, nil), "Bearer " + fromExternal(vectorUser), vectorUser, ""},
		{"signature only", Combine(nil, signature), vectorHeader, vectorUser, ""},
	}
	for _, tt := range tests {
		user, err := authorize(tt.a, tt.header)
		if tt.want == "" {
			if err != nil || user != tt.user {
				t.Errorf("%s: Authorize = %q, %v; want %q", tt.name, user, err, tt.user)
			}
			continue
		}
		if msg := authMessage(t, mustFail(user, err)); !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q does not contain %q", tt.name, msg, tt.want)
		}
	}
	// The JWT authorizer on its own never applies the rule.
	if user, err := authorize(withIssuer, "Bearer "+fromExternal(vectorUser)); err != nil || user != vectorUser {
		t.Errorf("JWT alone: Authorize = %q, %v", user, err)
	}
}

func TestIsKeyIdentity(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		vectorUser:                           true,
		"02" + strings.Repeat("0", 64):       true,
		"03" + strings.Repeat("f", 64):       true,
		strings.ToUpper(vectorUser):          false,
		"04" + strings.Repeat("0", 64):       false,
		"02" + strings.Repeat("0", 63):       false,
		"02" + strings.Repeat("0", 65):       false,
		"02" + strings.Repeat("0", 63) + "g": false,
		vectorUser + " ":                     false,
		"":                                   false,
		"user-1":                             false,
	} {
		if got := isKeyIdentity(id); got != want {
			t.Errorf("isKeyIdentity(%q) = %v, want %v", id, got, want)
		}
	}
}
