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
