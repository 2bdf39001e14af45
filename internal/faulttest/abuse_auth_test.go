package faulttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/golang-jwt/jwt/v5"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// idp is an identity provider as the server sees it: a P-256 key that signs ES256 JWTs.
type idp struct {
	key *ecdsa.PrivateKey
	kid string
}

func newIDP(t testing.TB, kid string) *idp {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &idp{key: key, kid: kid}
}

// token returns a JWT for sub, valid for an hour, naming kid in its header if not empty.
func (p *idp) token(t testing.TB, sub, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(time.Now().Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	})
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pemFile writes the public key as a PEM file and returns its path.
func (p *idp) pemFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&p.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jwks is the JSON Web Key Set holding the public key under p.kid.
func (p *idp) jwks(t testing.TB) []byte {
	t.Helper()
	point, err := p.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	b, err := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "EC", "crv": "P-256", "kid": p.kid, "alg": "ES256", "use": "sig",
		"x": enc(point[1:33]), "y": enc(point[33:]),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bearer returns a VSS HTTP API client that sends token.
func bearer(srv *serverProc, token string) *legacyAPI {
	return &legacyAPI{base: srv.url(), http: newHTTPClient(10 * time.Second), auth: func() string { return "Bearer " + token }}
}

// lnurlToken logs in at the server's LNURL-auth issuer with linking key key, as
// vss-client-ng's LnurlAuthToJwtProvider does, and returns the JWT it is given.
func lnurlToken(t testing.TB, srv *serverProc, public string, key *secp256k1.PrivateKey) string {
	t.Helper()
	get := func(u string) []byte {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
		}
		return body
	}
	lnurl := string(get(srv.url() + "/auth/lnurl"))
	u, err := url.Parse(lnurl)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := hex.DecodeString(u.Query().Get("k1"))
	if err != nil {
		t.Fatal(err)
	}
	sig := secpecdsa.Sign(key, k1).Serialize()
	signed := strings.Replace(lnurl, public, srv.url(), 1) + "&sig=" + hex.EncodeToString(sig) +
		"&key=" + hex.EncodeToString(key.PubKey().SerializeCompressed())
	var answer struct{ Token string }
	if err := json.Unmarshal(get(signed), &answer); err != nil || answer.Token == "" {
		t.Fatalf("LNURL-auth answer: %v", err)
	}
	return answer.Token
}

// TestForgedSubjectCannotCrossSchemes runs the server with signature and JWT
// authentication side by side (and its LNURL-auth issuer), and an identity provider
// whose user names a signature user's public key as sub: that token reads, lists,
// overwrites and deletes nothing of the signature user's, while a bystander keeps
// working. A token of the server's own LNURL-auth issuer for the same key, which proves
// the key, reaches the data; so does the key-shaped sub on a JWT-only server, as on the
// reference server.
func TestForgedSubjectCannotCrossSchemes(t *testing.T) {
	const public = "https://vss.example.com"
	provider := newIDP(t, "")
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature,jwt",
		"--jwt-public-key-file", provider.pemFile(t), "--lnurl-auth", "--public-url", public)
	ctx := testContext(t, time.Minute)

	victimKey, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	victimID := hex.EncodeToString(victimKey.PubKey().SerializeCompressed())
	victim := &legacyAPI{base: srv.url(), http: newHTTPClient(10 * time.Second), auth: signer(victimKey)}
	secret := []byte("the victim's channel state")
	if err := victim.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "channel", Version: 0, Value: secret}}}); err != nil {
		t.Fatalf("victim writes: %v", err)
	}

	by := newBystander(t, srv, nil)
	by.start(ctx)
	forged := provider.token(t, victimID, "")
	var refused int
	for _, c := range []api{bearer(srv, forged), newConnectAPI(srv.url(), newHTTPClient(10*time.Second), func() string { return "Bearer " + forged })} {
		for range 50 {
			res, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "channel"})
			if !isCode(err, vssv1.ErrorCode_AUTH_EXCEPTION) {
				t.Fatalf("forged sub reads the victim's key: %v, %v; want AUTH_EXCEPTION", res, err)
			}
			list, err := c.ListKeyVersions(ctx, &vssv1.ListKeyVersionsRequest{StoreId: "wallet"})
			if !isCode(err, vssv1.ErrorCode_AUTH_EXCEPTION) {
				t.Fatalf("forged sub lists the victim's store: %v, %v; want AUTH_EXCEPTION", list, err)
			}
			err = c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
				TransactionItems: []*vssv1.KeyValue{{Key: "channel", Version: -1, Value: []byte("overwritten")}}})
			if !isCode(err, vssv1.ErrorCode_AUTH_EXCEPTION) {
				t.Fatalf("forged sub writes the victim's key: %v; want AUTH_EXCEPTION", err)
			}
			err = c.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: "wallet", KeyValue: &vssv1.KeyValue{Key: "channel", Version: -1}})
			if !isCode(err, vssv1.ErrorCode_AUTH_EXCEPTION) {
				t.Fatalf("forged sub deletes the victim's key: %v; want AUTH_EXCEPTION", err)
			}
			refused += 4
		}
	}
	by.finish(t, srv, fmt.Sprintf("forged key subject (%d requests refused)", refused), 0)

	res, err := victim.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "channel"})
	if err != nil || string(res.GetValue().GetValue()) != string(secret) || res.GetValue().GetVersion() != 1 {
		t.Fatalf("the victim reads %v, %v; want its value untouched", res, err)
	}
	// The identity provider's ordinary users work.
	alice := bearer(srv, provider.token(t, "alice", ""))
	if err := alice.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "channel", Version: 0, Value: []byte("alice")}}}); err != nil {
		t.Fatalf("an ordinary JWT user writes: %v", err)
	}
	// The server's own LNURL-auth token for the victim's key proves the key: same user.
	proven := bearer(srv, lnurlToken(t, srv, public, victimKey))
	if res, err := proven.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "channel"}); err != nil || string(res.GetValue().GetValue()) != string(secret) {
		t.Fatalf("the LNURL-auth token of the victim's key reads %v, %v; want the victim's value", res, err)
	}

	// One scheme, as on the reference server: the raw sub is the user, whatever its shape.
	jwtOnly := startServer(t, "--database-url", "memory:", "--auth", "jwt", "--jwt-public-key-file", provider.pemFile(t))
	c := bearer(jwtOnly, provider.token(t, victimID, ""))
	if err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "wallet",
		TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}}); err != nil {
		t.Fatalf("JWT-only server, key-shaped sub writes: %v", err)
	}
	if res, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "wallet", Key: "k"}); err != nil || string(res.GetValue().GetValue()) != "v" {
		t.Fatalf("JWT-only server, key-shaped sub reads %v, %v", res, err)
	}
}

// slowJWKS serves a JWKS document on loopback: the first request at once (the server
// reads it at start), every later one only after delay.
type slowJWKS struct {
	addr  string
	hits  atomic.Int64
	delay time.Duration
	body  []byte
}

func startSlowJWKS(t testing.TB, body []byte, delay time.Duration) *slowJWKS {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowJWKS{addr: l.Addr().String(), delay: delay, body: body}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hits.Add(1) > 1 {
			select {
			case <-time.After(s.delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(s.body)
	})}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return s
}

func (s *slowJWKS) url() string { return "http://" + s.addr + "/jwks.json" }

// TestUnknownKIDFloodDoesNotStall floods a server, whose identity provider's JWKS
// endpoint takes 5 s to answer, with tokens naming made-up key ids, while a JWT user
// with a valid token keeps writing and reading: every flood request is refused with
// AUTH_EXCEPTION (none waits for the JWKS endpoint, none holds a request slot while
// waiting), the bystander never fails, and the JWKS is fetched at most once more. The
// server has 16 request slots, so that 32 requests stalled for longer than the 2 s a
// request may queue would show, and the queue is long enough for a busy test machine.
func TestUnknownKIDFloodDoesNotStall(t *testing.T) {
	const slowFetch, attack, workers = 5 * time.Second, 8 * time.Second, 32
	provider, stranger := newIDP(t, "known"), newIDP(t, "")
	jwks := startSlowJWKS(t, provider.jwks(t), slowFetch)
	srv := startServer(t, "--database-url", "memory:", "--auth", "jwt", "--jwks", jwks.url(),
		"--max-concurrent-requests", "16", "--queue-timeout", "2s")
	ctx := testContext(t, time.Minute)

	by := newBystander(t, srv, bearer(srv, provider.token(t, "bystander", provider.kid)))
	by.start(ctx)
	var mu sync.Mutex
	var latencies []time.Duration
	var wrong []error
	stop := time.Now().Add(attack)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i := 0
			c := &legacyAPI{base: srv.url(), http: newHTTPClient(10 * time.Second), auth: func() string {
				i++
				return "Bearer " + stranger.token(t, "attacker", fmt.Sprintf("made-up-%d-%d", w, i))
			}}
			for time.Now().Before(stop) {
				start := time.Now()
				_, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				if !isCode(err, vssv1.ErrorCode_AUTH_EXCEPTION) {
					wrong = append(wrong, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fetches := jwks.hits.Load()
	t.Logf("unknown-kid flood: %d requests from %d clients in %v, answered p50 %v p99 %v max %v; %d not AUTH_EXCEPTION; %d JWKS fetches",
		len(latencies), workers, attack, pct(latencies, 50), pct(latencies, 99), pct(latencies, 100), len(wrong), fetches)
	by.finish(t, srv, "unknown-kid flood with a 5 s JWKS endpoint", 0)
	if len(wrong) > 0 {
		t.Errorf("%d of %d flood requests were not refused with AUTH_EXCEPTION; first: %v", len(wrong), len(latencies), wrong[0])
	}
	// One fetch at start, one early refresh for the flood (the next is 10 s later).
	if fetches > 2 {
		t.Errorf("the JWKS was fetched %d times; want at most 2", fetches)
	}
}
