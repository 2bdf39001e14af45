package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwk returns the JWK of a public key with the given kid and extra members.
func jwk(t testing.TB, kid string, pub crypto.PublicKey, extra ...string) map[string]any {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	var m map[string]any
	switch k := pub.(type) {
	case *rsa.PublicKey:
		m = map[string]any{"kty": "RSA", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		point, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			t.Fatal(err)
		}
		size := (len(point) - 1) / 2
		m = map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": enc(point[1 : 1+size]), "y": enc(point[1+size:])}
	case ed25519.PublicKey:
		m = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": enc(k)}
	default:
		t.Fatalf("jwk: unsupported %T", pub)
	}
	if kid != "" {
		m["kid"] = kid
	}
	for i := 0; i < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// jwksJSON returns a JWKS document holding keys.
func jwksJSON(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile replaces path atomically, as a secret rotation would.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log destination safe for the refresh goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogger logs to buf.
func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startJWT is newTestJWT for JWKS tests: it returns the cancel function too, and waits
// for the refresh goroutine to end when the test does.
func startJWT(t testing.TB, cfg JWTConfig) (*JWT, context.CancelFunc) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return jwtNow }
	}
	ctx, cancel := context.WithCancel(context.Background())
	j, err := NewJWT(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("NewJWT: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		waitStopped(t, j)
	})
	return j, cancel
}

// waitStopped waits for the refresh goroutine of j to end.
func waitStopped(t testing.TB, j *JWT) {
	t.Helper()
	select {
	case <-j.jwks.stopped:
	case <-time.After(5 * time.Second):
		t.Error("the JWKS refresh goroutine did not stop after its context ended")
	}
}

// eventually polls cond every 10ms for up to 5 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// accepts reports whether a accepts the bearer token.
func accepts(a *JWT, token string) bool {
	_, err := authorize(a, "Bearer "+token)
	return err == nil
}

func TestJWKSFileKeySelection(t *testing.T) {
	t.Parallel()
	r1, r2, small, enc := newRSA(t, 2048), newRSA(t, 2048), newRSA(t, 1024), newRSA(t, 2048)
	e1, d1, static := newEC(t), newEd(t), newEC(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwksJSON(t,
		jwk(t, "r1", &r1.PublicKey, "alg", "RS256", "use", "sig"),
		jwk(t, "r2", &r2.PublicKey),
		jwk(t, "e1", &e1.PublicKey, "alg", "ES256"),
		jwk(t, "d1", d1.Public(), "alg", "EdDSA"),
		// Skipped, each for its own reason:
		jwk(t, "small", &small.PublicKey),
		jwk(t, "enc", &enc.PublicKey, "use", "enc"),
		jwk(t, "r512", &r2.PublicKey, "alg", "RS512"),
		jwk(t, "p384", &p384.PublicKey),
		map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		map[string]any{"kty": "RSA", "kid": "broken", "e": "AQAB"},
	))
	var logs syncBuffer
	a, _ := startJWT(t, JWTConfig{Keys: []crypto.PublicKey{&static.PublicKey}, JWKSFile: path, Logger: testLogger(&logs)})
	for _, kid := range []string{"small", "enc", "r512", "p384", "hmac", "broken"} {
		if !strings.Contains(logs.String(), "kid="+kid) {
			t.Errorf("no warning about skipping key %q in the log:\n%s", kid, logs.String())
		}
	}

	kid := func(k string) map[string]any { return map[string]any{"kid": k} }
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"r1 by kid", sign(t, jwt.SigningMethodRS256, r1, validClaims(), kid("r1")), true},
		{"r2 by kid", sign(t, jwt.SigningMethodRS256, r2, validClaims(), kid("r2")), true},
		{"r2 without kid", sign(t, jwt.SigningMethodRS256, r2, validClaims(), nil), true},
		{"r2 under kid r1: only r1 is tried", sign(t, jwt.SigningMethodRS256, r2, validClaims(), kid("r1")), false},
		{"e1 by kid", sign(t, jwt.SigningMethodES256, e1, validClaims(), kid("e1")), true},
		{"d1 by kid", sign(t, jwt.SigningMethodEdDSA, d1, validClaims(), kid("d1")), true},
		{"ES256 under an RSA key's kid falls back to the EC keys", sign(t, jwt.SigningMethodES256, e1, validClaims(), kid("r1")), true},
		{"static key without kid", sign(t, jwt.SigningMethodES256, static, validClaims(), nil), true},
		{"static key under kid e1: only e1 is tried", sign(t, jwt.SigningMethodES256, static, validClaims(), kid("e1")), false},
		{"static key under an unknown kid", sign(t, jwt.SigningMethodES256, static, validClaims(), kid("nope")), true},
		{"skipped 1024-bit key", sign(t, jwt.SigningMethodRS256, small, validClaims(), kid("small")), false},
		{"skipped encryption key", sign(t, jwt.SigningMethodRS256, enc, validClaims(), kid("enc")), false},
	}
	for _, tt := range tests {
		if got := accepts(a, tt.token); got != tt.ok {
			t.Errorf("%s: accepted %v, want %v", tt.name, got, tt.ok)
		}
	}
}

func TestJWKSFileRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newEC(t), newEC(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, jwksJSON(t, jwk(t, "old", &oldKey.PublicKey)))
	a, _ := startJWT(t, JWTConfig{JWKSFile: path, JWKSRefresh: 20 * time.Millisecond, Logger: testLogger(&syncBuffer{})})

	// Tokens without kid: only the periodic refresh can pick up the new key.
	oldToken := sign(t, jwt.SigningMethodES256, oldKey, validClaims(), nil)
	newToken := sign(t, jwt.SigningMethodES256, newKey, validClaims(), nil)
	if !accepts(a, oldToken) || accepts(a, newToken) {
		t.Fatal("before rotation: want the old key only")
	}
	writeFile(t, path, jwksJSON(t, jwk(t, "new", &newKey.PublicKey)))
	eventually(t, "the rotated key is accepted", func() bool { return accepts(a, newToken) })
	if accepts(a, oldToken) {
		t.Fatal("after rotation the removed key is still accepted")
	}

	// A broken file keeps the last good keys.
	writeFile(t, path, []byte("{not json"))
	gen := a.jwks.snapshot().gen
	time.Sleep(100 * time.Millisecond) // several refresh intervals
	if !accepts(a, newToken) || a.jwks.snapshot().gen != gen {
		t.Fatal("a failed refresh replaced the keys")
	}
}

// jwksServer serves a JWKS document over TLS on loopback.
type jwksServer struct {
	*httptest.Server
	body   atomic.Pointer[[]byte]
	status atomic.Int32
	hits   atomic.Int64
}

// newJWKSServer serves body at /.well-known/jwks.json until the test ends.
func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(body)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

// set replaces the served document.
func (s *jwksServer) set(body []byte) { s.body.Store(&body) }

// url is the address of the JWKS document.
func (s *jwksServer) url() string { return s.URL + "/.well-known/jwks.json" }

func TestJWKSURLRefresh(t *testing.T) {
	t.Parallel()
	keyA, keyB := newRSA(t, 2048), newEd(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(t, "a", &keyA.PublicKey)))
	var logs syncBuffer
	a, cancel := startJWT(t, JWTConfig{JWKSURL: srv.url(), HTTPClient: srv.Client(), JWKSRefresh: 30 * time.Millisecond, Logger: testLogger(&logs)})

	tokenA := sign(t, jwt.SigningMethodRS256, keyA, validClaims(), map[string]any{"kid": "a"})
	tokenB := sign(t, jwt.SigningMethodEdDSA, keyB, validClaims(), nil)
	if !accepts(a, tokenA) || accepts(a, tokenB) {
		t.Fatal("before rotation: want key a only")
	}

	srv.set(jwksJSON(t, jwk(t, "b", keyB.Public())))
	eventually(t, "the rotated key is accepted", func() bool { return accepts(a, tokenB) })
	if accepts(a, tokenA) {
		t.Fatal("after rotation the removed key is still accepted")
	}

	// An unavailable endpoint keeps the last good keys, and says so in the log.
	srv.status.Store(http.StatusServiceUnavailable)
	hits := srv.hits.Load()
	eventually(t, "two failed refreshes", func() bool { return srv.hits.Load() >= hits+2 })
	if !accepts(a, tokenB) {
		t.Fatal("a failed refresh dropped the keys")
	}
	if !strings.Contains(logs.String(), "JWKS refresh failed") || !strings.Contains(logs.String(), "503") {
		t.Errorf("no refresh failure in the log:\n%s", logs.String())
	}

	// Ending the context stops the refresh goroutine.
	cancel()
	waitStopped(t, a)
	hits = srv.hits.Load()
	time.Sleep(100 * time.Millisecond) // several refresh intervals
	if got := srv.hits.Load(); got != hits {
		t.Fatalf("the JWKS was fetched %d more times after the context ended", got-hits)
	}
}

func TestJWKSUnknownKIDRefresh(t *testing.T) {
	t.Parallel()
	keyA, keyB, keyC := newEC(t), newEC(t), newEC(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(t, "a", &keyA.PublicKey)))
	a, _ := startJWT(t, JWTConfig{JWKSURL: srv.url(), HTTPClient: srv.Client(), Logger: testLogger(&syncBuffer{})}) // hourly refresh
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("%d fetches at start, want 1", got)
	}

	// A token naming a kid published since the last fetch is refused at once, without
	// waiting, and makes the keys be fetched in the background; then it passes.
	srv.set(jwksJSON(t, jwk(t, "a", &keyA.PublicKey), jwk(t, "b", &keyB.PublicKey)))
	tokenB := sign(t, jwt.SigningMethodES256, keyB, validClaims(), map[string]any{"kid": "b"})
	if msg := authMessage(t, mustFail(authorize(a, "Bearer "+tokenB))); !strings.Contains(msg, "retry in a few seconds") {
		t.Fatalf("new kid before the refresh: message %q", msg)
	}
	eventually(t, "the new kid is accepted", func() bool { return accepts(a, tokenB) })
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("%d fetches after an unknown kid, want 2", got)
	}

	// Known kids, and unknown ones within 10 seconds of the last early fetch, do not
	// fetch again.
	srv.set(jwksJSON(t, jwk(t, "c", &keyC.PublicKey)))
	if !accepts(a, sign(t, jwt.SigningMethodES256, keyA, validClaims(), map[string]any{"kid": "a"})) {
		t.Fatal("kid a refused")
	}
	for range 100 {
		if accepts(a, sign(t, jwt.SigningMethodES256, keyC, validClaims(), map[string]any{"kid": "c"})) {
			t.Fatal("kid c accepted before a refresh")
		}
	}
	time.Sleep(50 * time.Millisecond) // time for a fetch that should not happen
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("%d fetches, want still 2: early refreshes are rate limited", got)
	}
}

func TestJWKSStartupErrors(t *testing.T) {
	t.Parallel()
	key := newEC(t)
	good := jwksJSON(t, jwk(t, "a", &key.PublicKey))
	tests := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"HTTP error", good, http.StatusInternalServerError, "HTTP status 500"},
		{"not JSON", []byte("<html>"), http.StatusOK, "not a JSON Web Key Set"},
		{"no keys", jwksJSON(t), http.StatusOK, "no usable signing key (of 0)"},
		{"only unusable keys", jwksJSON(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}), http.StatusOK, "no usable signing key (of 1)"},
		{"oversized", append(append([]byte(`{"keys":[],"pad":"`), bytes.Repeat([]byte("a"), maxJWKSBytes)...), `"}`...), http.StatusOK, "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		srv := newJWKSServer(t, tt.body)
		srv.status.Store(int32(tt.status))
		_, err := NewJWT(context.Background(), JWTConfig{JWKSURL: srv.url(), HTTPClient: srv.Client(), Logger: testLogger(&syncBuffer{})})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewJWT error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}

	path := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, path, []byte("[]"))
	if _, err := NewJWT(context.Background(), JWTConfig{JWKSFile: path}); err == nil || !strings.Contains(err.Error(), "JWKS file") {
		t.Errorf("bad file: NewJWT error %v", err)
	}

	// A URL's password never appears in errors.
	srv := newJWKSServer(t, good)
	srv.status.Store(http.StatusNotFound)
	u := strings.Replace(srv.url(), "https://", "https://user:hunter2@", 1)
	if _, err := NewJWT(context.Background(), JWTConfig{JWKSURL: u, HTTPClient: srv.Client()}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("NewJWT error %v: want an error without the password", err)
	}
}

// heldTransport lets the first round trip through and holds every later one until its
// context ends; held reports each later one when it starts, released when it returns.
type heldTransport struct {
	next     http.RoundTripper
	calls    atomic.Int64
	held     chan struct{} // receives one value per held round trip
	released chan struct{} // closed when the first held round trip returns
	once     sync.Once
}

func (h *heldTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.calls.Add(1) == 1 {
		return h.next.RoundTrip(r)
	}
	defer h.once.Do(func() { close(h.released) })
	h.held <- struct{}{}
	<-r.Context().Done() // the fetch timeout, or the end of the test
	return nil, r.Context().Err()
}

// TestJWKSUnknownKIDNeverWaits floods the authorizer with tokens naming made-up kids
// while the JWKS endpoint does not answer: every one is refused while the one fetch
// they cause is still pending (no request waits on the network, none queues behind
// another), and a user with a known kid keeps passing. The latencies are printed.
func TestJWKSUnknownKIDNeverWaits(t *testing.T) {
	t.Parallel()
	known, stranger := newEC(t), newEC(t)
	srv := newJWKSServer(t, jwksJSON(t, jwk(t, "known", &known.PublicKey)))
	tr := &heldTransport{next: srv.Client().Transport, held: make(chan struct{}, 16), released: make(chan struct{})}
	a, _ := startJWT(t, JWTConfig{JWKSURL: srv.url(), HTTPClient: &http.Client{Transport: tr}, Logger: testLogger(&syncBuffer{})})

	const workers, perWorker = 8, 50
	var mu sync.Mutex
	var flood, bystander []time.Duration
	record := func(s *[]time.Duration, d time.Duration) {
		mu.Lock()
		*s = append(*s, d)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				token := sign(t, jwt.SigningMethodES256, stranger, validClaims(), map[string]any{"kid": fmt.Sprintf("made-up-%d-%d", w, i)})
				start := time.Now()
				if accepts(a, token) {
					t.Error("a token with a made-up kid was accepted")
				}
				record(&flood, time.Since(start))
			}
		}()
		go func() {
			defer wg.Done()
			token := sign(t, jwt.SigningMethodES256, known, validClaims(), map[string]any{"kid": "known"})
			for range perWorker {
				start := time.Now()
				if !accepts(a, token) {
					t.Error("the known kid was refused")
				}
				record(&bystander, time.Since(start))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-tr.released:
	}
	select {
	case <-tr.released:
		t.Fatal("requests waited for the JWKS fetch: they were answered only after it gave up")
	default:
	}
	select {
	case <-tr.held:
	case <-time.After(5 * time.Second):
		t.Fatal("no JWKS fetch after tokens with unknown kids")
	}
	if got := tr.calls.Load(); got != 2 {
		t.Errorf("%d JWKS fetches, want 2 (at start, and one for all the unknown kids)", got)
	}
	slices.Sort(flood)
	slices.Sort(bystander)
	p99 := func(s []time.Duration) time.Duration { return s[(len(s)*99)/100] }
	t.Logf("while the JWKS endpoint hung: %d unknown-kid tokens refused, p99 %v, max %v; %d known-kid tokens accepted, p99 %v, max %v",
		len(flood), p99(flood), flood[len(flood)-1], len(bystander), p99(bystander), bystander[len(bystander)-1])
}
