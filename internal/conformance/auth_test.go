package conformance_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/golang-jwt/jwt/v5"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/server"
	"github.com/govss/vss/server/auth"
	"github.com/govss/vss/storage/sqlite"
)

// signatureCreds authenticates each test user with the signature scheme, using a
// secp256k1 key derived from the user's name.
func signatureCreds(user string) http.Header {
	if user == "" {
		return nil
	}
	seed := sha256.Sum256([]byte(user))
	return http.Header{"Authorization": {auth.SignatureHeader(secp256k1.PrivKeyFromBytes(seed[:]), time.Now())}}
}

// jwtCreds authenticates each test user with an RS256 JWT whose subject is the user.
func jwtCreds(t *testing.T, key *rsa.PrivateKey) conformance.Credentials {
	return func(user string) http.Header {
		if user == "" {
			return nil
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
			"sub": user, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Authorization": {"Bearer " + tok}}
	}
}

// authServer serves a memory store behind the real signature and JWT authorizers.
func authServer(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	jwtAuth, err := auth.NewJWT(context.Background(), auth.JWTConfig{Keys: []crypto.PublicKey{&key.PublicKey}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return serveWith(t, store, auth.Combine(jwtAuth, auth.NewSignature(time.Now)))
}

// TestConformanceWithRealAuth runs the whole contract with users authenticated by the
// schemes wallets use: per-request signatures and JWTs, through every binding.
func TestConformanceWithRealAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	base := authServer(t, key)
	for name, creds := range map[string]conformance.Credentials{"signature": signatureCreds, "jwt": jwtCreds(t, key)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Authentication is the same for every binding (TestUsersCannotTouchEachOther
			// covers them all); run the suite through one binding of each transport.
			for _, b := range conformance.Bindings(creds) {
				if b.Name == "vss-http" || b.Name == "grpc" {
					t.Run(b.Name, func(t *testing.T) { conformance.Run(t, b.New(base)) })
				}
			}
		})
	}
}

// TestUsersCannotTouchEachOther has two users of each scheme work on the SAME store id
// and key through every binding: neither can read, list, overwrite or delete the other's
// data, and a signature user and a JWT user are distinct too.
func TestUsersCannotTouchEachOther(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	base := authServer(t, key)
	jc := jwtCreds(t, key)
	// Both kinds of credentials in one function: "jwt:" users get tokens.
	creds := func(user string) http.Header {
		if len(user) > 4 && user[:4] == "jwt:" {
			return jc(user[4:])
		}
		return signatureCreds(user)
	}
	ctx := context.Background()
	for _, b := range conformance.Bindings(creds) {
		t.Run(b.Name, func(t *testing.T) {
			c := b.New(base)
			store := "shared-" + b.Name
			users := []string{"alice", "bob", "jwt:alice", "jwt:carol"}
			for _, u := range users {
				if _, err := c.PutObjects(ctx, u, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte(u)}}}); err != nil {
					t.Fatalf("%s creates k: %v", u, err)
				}
			}
			for _, u := range users {
				// Overwrite attempts at the others' versions fail or touch only u's own key.
				_, err := c.PutObjects(ctx, u, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 5, Value: []byte("evil")}}})
				if err == nil {
					t.Fatalf("%s overwrote a version it does not have", u)
				}
				if _, err := c.DeleteObject(ctx, u, &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: &vssv1.KeyValue{Key: "other", Version: -1}}); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range users {
				resp, err := c.GetObject(ctx, u, &vssv1.GetObjectRequest{StoreId: store, Key: "k"})
				if err != nil || string(resp.GetValue().GetValue()) != u || resp.GetValue().GetVersion() != 1 {
					t.Fatalf("%s reads %v, %v; want its own value", u, resp, err)
				}
				list, err := c.ListKeyVersions(ctx, u, &vssv1.ListKeyVersionsRequest{StoreId: store})
				if err != nil || len(list.GetKeyVersions()) != 1 {
					t.Fatalf("%s lists %v, %v; want only its own key", u, list, err)
				}
			}
			// Deleting unconditionally removes only the caller's key.
			if _, err := c.DeleteObject(ctx, "bob", &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: &vssv1.KeyValue{Key: "k", Version: -1}}); err != nil {
				t.Fatal(err)
			}
			for _, u := range []string{"alice", "jwt:alice", "jwt:carol"} {
				if resp, err := c.GetObject(ctx, u, &vssv1.GetObjectRequest{StoreId: store, Key: "k"}); err != nil || string(resp.GetValue().GetValue()) != u {
					t.Fatalf("after bob's delete, %s reads %v, %v", u, resp, err)
				}
			}
		})
	}
}

// TestRejectedCredentials checks that bad credentials are AUTH errors in both bindings,
// with status 401 and an ErrorResponse in the VSS HTTP API.
func TestRejectedCredentials(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	base := authServer(t, key)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	stale := func(string) http.Header {
		seed := sha256.Sum256([]byte("stale"))
		return http.Header{"Authorization": {auth.SignatureHeader(secp256k1.PrivKeyFromBytes(seed[:]), time.Now().Add(-25*time.Hour))}}
	}
	for name, creds := range map[string]conformance.Credentials{
		"missing":         func(string) http.Header { return nil },
		"garbage":         func(string) http.Header { return http.Header{"Authorization": {"hello"}} },
		"stale signature": stale,
		"foreign jwt":     jwtCreds(t, other),
		"empty bearer":    func(string) http.Header { return http.Header{"Authorization": {"Bearer "}} },
	} {
		for _, b := range conformance.Bindings(creds) {
			_, err := b.New(base).GetObject(context.Background(), "someone", &vssv1.GetObjectRequest{Key: "k"})
			var f *conformance.Failure
			if !errors.As(err, &f) || f.Code != vssv1.ErrorCode_AUTH_EXCEPTION {
				t.Errorf("%s via %s: got %v, want AUTH_EXCEPTION", name, b.Name, err)
			}
		}
	}
}

// serveWith serves store behind authorizer.
func serveWith(t *testing.T, store *sqlite.Store, authorizer server.Authorizer) string {
	t.Helper()
	return serveAuth(t, store, authorizer, 0)
}
