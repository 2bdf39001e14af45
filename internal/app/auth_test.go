package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/golang-jwt/jwt/v5"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/server"
	"github.com/govss/vss/server/auth"
	"github.com/govss/vss/storage/sqlite"
)

// TestSetUpAuthKeySubjects checks how --auth and --auth-jwt-pubkey-subjects decide
// whether a JWT may name a signature user's public key as its sub.
func TestSetUpAuthKeySubjects(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store, err := sqlite.OpenMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	idp, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&idp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	user, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyID := hex.EncodeToString(user.PubKey().SerializeCompressed())
	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Subject: keyID, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(idp)
	if err != nil {
		t.Fatal(err)
	}
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	signature := http.Header{"Authorization": {auth.SignatureHeader(user, time.Now())}}

	tests := []struct {
		name    string
		cfg     AuthConfig
		allowed bool
	}{
		{"jwt only: raw sub", AuthConfig{Schemes: "jwt", JWTPublicKeyPEM: pemText}, true},
		{"signature and jwt: refused", AuthConfig{Schemes: "signature,jwt", JWTPublicKeyPEM: pemText}, false},
		{"signature and jwt, issuer trusted", AuthConfig{Schemes: "signature,jwt", JWTPublicKeyPEM: pemText, JWTPubkeySubjects: true}, true},
	}
	for _, tt := range tests {
		a, _, err := setUpAuth(ctx, tt.cfg, store, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := a.Authorize(ctx, bearer)
		var e *server.Error
		switch {
		case tt.allowed && (err != nil || got != keyID):
			t.Errorf("%s: Authorize = %q, %v; want %q", tt.name, got, err, keyID)
		case !tt.allowed && (!errors.As(err, &e) || e.Code != vssv1.ErrorCode_AUTH_EXCEPTION):
			t.Errorf("%s: Authorize = %q, %v; want AUTH_EXCEPTION", tt.name, got, err)
		}
		if tt.cfg.Schemes == "signature,jwt" {
			if got, err := a.Authorize(ctx, signature); err != nil || got != keyID {
				t.Errorf("%s: signature user = %q, %v", tt.name, got, err)
			}
		}
	}
}
