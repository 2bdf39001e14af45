package lnurlauth

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/golang-jwt/jwt/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// storeKind is one way of getting an AuthStore; the flow tests run against each.
type storeKind struct {
	name string
	open func(t *testing.T) storage.AuthStore
}

var storeKinds = []storeKind{
	{"sqlite-memory", func(t *testing.T) storage.AuthStore { return openMemory(t) }},
	{"postgres", func(t *testing.T) storage.AuthStore { return openPostgres(t, pgtest.NewDatabase(t)) }},
}

// forEachStore runs f as a parallel subtest with a fresh store of every kind.
func forEachStore(t *testing.T, f func(t *testing.T, store storage.AuthStore)) {
	t.Helper()
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k.open(t))
		})
	}
}

// openMemory opens an in-memory SQLite store that is closed when t ends.
func openMemory(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.OpenMemory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPostgres opens a PostgreSQL store on dbURL that is closed when t ends.
func openPostgres(t *testing.T, dbURL string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dbURL, postgres.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// clock is a settable clock for Config.Now. It starts at the real time so that the
// database, which forgets challenges by its own clock, agrees with it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

// newClock returns a clock set to the real time.
func newClock() *clock { return &clock{now: time.Now()} }

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testServer is an Issuer served over HTTP on loopback.
type testServer struct {
	issuer *Issuer
	clock  *clock
	srv    *httptest.Server
	// client reaches srv whatever host a URL names, as a wallet reaches the server
	// behind PublicURL.
	client *http.Client
}

// startIssuer creates an Issuer on store from cfg and serves its routes on loopback
// until t ends. Without cfg.PublicURL, the public URL is http://localhost:<port> (a
// domain name, as vss-client-ng needs); without cfg.Now, a new clock drives it.
func startIssuer(t *testing.T, store storage.AuthStore, cfg Config) *testServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{clock: newClock(), srv: srv}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://localhost:" + port
	}
	if cfg.Now == nil {
		cfg.Now = ts.clock.Now
	}
	cfg.Store = store
	if ts.issuer, err = New(t.Context(), cfg); err != nil {
		srv.Close()
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	ts.issuer.Routes(mux)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	var d net.Dialer
	ts.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		},
	}}
	t.Cleanup(ts.client.CloseIdleConnections)
	return ts
}

// fetchLNURL GETs LNURLPath, as the wallet does with its configured URL, and returns
// the body, after checking the headers.
func (ts *testServer) fetchLNURL(t *testing.T) string {
	t.Helper()
	resp, err := ts.client.Get(ts.srv.URL + LNURLPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q", LNURLPath, resp.Status, body)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "text/plain; charset=utf-8" || cc != "no-store" {
		t.Errorf("GET %s: Content-Type %q, Cache-Control %q", LNURLPath, ct, cc)
	}
	return string(body)
}

// call GETs rawURL (any host: the request goes to the test server) and decodes the
// JSON answer, after checking the headers.
func (ts *testServer) call(t *testing.T, rawURL string) (int, response) {
	t.Helper()
	resp, err := ts.client.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("GET %s: Content-Type %q, Cache-Control %q", rawURL, ct, cc)
	}
	var r response
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("GET %s: %s: body %q: %v", rawURL, resp.Status, body, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK && (r.Status != "OK" || r.Token == "" || r.Reason != ""):
		t.Errorf("GET %s: 200 with body %q", rawURL, body)
	case resp.StatusCode != http.StatusOK && (r.Status != "ERROR" || r.Token != "" || r.Reason == ""):
		t.Errorf("GET %s: %s with body %q", rawURL, resp.Status, body)
	}
	return resp.StatusCode, r
}

// verifyURL returns the URL of VerifyPath on the test server with rawQuery.
func (ts *testServer) verifyURL(rawQuery string) string {
	return ts.srv.URL + VerifyPath + "?" + rawQuery
}

// newWallet returns a new secp256k1 linking key.
func newWallet(t *testing.T) *secp256k1.PrivateKey {
	t.Helper()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// keyHex returns the compressed public key of key in lowercase hex, the sub of its
// tokens.
func keyHex(key *secp256k1.PrivateKey) string {
	return hex.EncodeToString(key.PubKey().SerializeCompressed())
}

// k1Of returns the challenge of an LNURL the way vss-client-ng reads it: the k1
// parameter of a URL whose host is a domain name, as 32 bytes.
func k1Of(t *testing.T, lnurl string) []byte {
	t.Helper()
	u, err := url.Parse(lnurl)
	if err != nil {
		t.Fatalf("LNURL %q: %v", lnurl, err)
	}
	if u.Hostname() == "" || net.ParseIP(u.Hostname()) != nil {
		t.Fatalf("LNURL %q: vss-client-ng needs a domain name as host", lnurl)
	}
	k1, err := hex.DecodeString(u.Query().Get("k1"))
	if err != nil || len(k1) != 32 {
		t.Fatalf("LNURL %q: k1 is not 32 bytes of hex", lnurl)
	}
	return k1
}

// sign answers an LNURL as vss-client-ng's sign_lnurl does: it signs the 32 k1 bytes
// as the message digest and appends the DER signature and the compressed key, in
// lowercase hex, as the sig and key parameters.
func sign(t *testing.T, lnurl string, key *secp256k1.PrivateKey) string {
	t.Helper()
	sig := ecdsa.Sign(key, k1Of(t, lnurl)).Serialize()
	return lnurl + "&sig=" + hex.EncodeToString(sig) + "&key=" + keyHex(key)
}

// verifyToken checks token with pub as an ES256 JWT valid at now, and returns its
// claims and header.
func verifyToken(t *testing.T, token string, pub crypto.PublicKey, now time.Time) (*jwt.RegisteredClaims, map[string]any) {
	t.Helper()
	claims := &jwt.RegisteredClaims{}
	tok, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		t.Fatalf("token %q does not verify: %v", token, err)
	}
	return claims, tok.Header
}

// expiryClaim reads exp from the payload of token without verifying it, as
// vss-client-ng does to decide when to fetch a new token.
func expiryClaim(t *testing.T, token string) uint64 {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", token, len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp *uint64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Exp == nil {
		t.Fatalf("payload %s: exp is not an unsigned integer (%v)", payload, err)
	}
	return *c.Exp
}
