package vssclient_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// lnurlServer is a real server with the LNURL-auth issuer, counting the requests for
// LNURLs and tokens.
type lnurlServer struct {
	*vsstest.Server
	lnurls, verifies atomic.Int64
	failLNURL        atomic.Int64 // answer this many LNURL requests with 503
}

func startLNURL(t *testing.T) *lnurlServer {
	s := &lnurlServer{}
	s.Server = vsstest.Start(t, vsstest.Config{LNURLAuth: true, TokenTTL: 2 * time.Minute, Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/auth/lnurl":
				s.lnurls.Add(1)
				if s.failLNURL.Add(-1) >= 0 {
					http.Error(w, "try later", http.StatusServiceUnavailable)
					return
				}
			case "/auth/lnurl/verify":
				s.verifies.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}})
	return s
}

// clock is a settable clock for the token cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestLNURLAuthToken logs in once for many concurrent calls, keeps the token while it
// is valid, fetches a new one shortly before it expires, and acts as the linking key's
// user.
func TestLNURLAuthToken(t *testing.T) {
	t.Parallel()
	srv := startLNURL(t)
	key := newKey(t)
	start := time.Now()
	clk := &clock{now: start}
	var domains []string
	auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{
		URL: srv.LNURL,
		LinkingKeyFor: func(domain string) (*secp256k1.PrivateKey, error) {
			domains = append(domains, domain) // logins are serialized
			return key, nil
		},
		Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := vssclient.New(srv.URL, vssclient.WithHeaders(auth))
	put(t, c, "s", kv("k", 0, "v"))

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if srv.lnurls.Load() != 1 || srv.verifies.Load() != 1 {
		t.Fatalf("21 calls made %d LNURL and %d token requests, want 1 each", srv.lnurls.Load(), srv.verifies.Load())
	}
	if len(domains) != 1 || domains[0] != "localhost" {
		t.Fatalf("linking keys asked for domains %q, want [localhost]", domains)
	}

	// The token lives 2 minutes; it is kept until 60 s before its exp.
	clk.set(start.Add(50 * time.Second))
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}); err != nil || srv.verifies.Load() != 1 {
		t.Fatalf("50 s later: %v, %d logins; want the cached token", err, srv.verifies.Load())
	}
	first, _ := auth.Token(testCtx(t))
	clk.set(start.Add(70 * time.Second))
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}); err != nil || srv.verifies.Load() != 2 {
		t.Fatalf("70 s later: %v, %d logins; want a new token", err, srv.verifies.Load())
	}
	if second, _ := auth.Token(testCtx(t)); second == first {
		t.Fatal("the token was not replaced")
	}

	// The user is the linking key: the signature scheme with that key sees the data.
	got, err := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(key))).GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	if err != nil || string(got.GetValue().GetValue()) != "v" {
		t.Fatalf("read with the linking key's signature: %v, %v", got, err)
	}
}

// TestLNURLAuthDropsRefusedToken uses one server's token at another server, which
// refuses it: the client drops the token and logs in again for the next call.
func TestLNURLAuthDropsRefusedToken(t *testing.T) {
	t.Parallel()
	issuer, other := startLNURL(t), startLNURL(t)
	auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: issuer.LNURL, LinkingKey: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := vssclient.New(other.URL, vssclient.WithHeaders(auth), fastRetries(5))
	for i := int64(1); i <= 2; i++ {
		_, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
		if !vssclient.IsUnauthenticated(err) || issuer.verifies.Load() != i {
			t.Fatalf("call %d: %v after %d logins; want unauthenticated after %d", i, err, issuer.verifies.Load(), i)
		}
	}
}

// TestLNURLAuthRetriesUnavailableIssuer has the issuer answer 503 twice: the client
// retries the login with the call.
func TestLNURLAuthRetriesUnavailableIssuer(t *testing.T) {
	t.Parallel()
	srv := startLNURL(t)
	srv.failLNURL.Store(2)
	auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{URL: srv.LNURL, LinkingKey: newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	c := vssclient.New(srv.URL, vssclient.WithHeaders(auth), fastRetries(5))
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"}); err != nil {
		t.Fatal(err)
	}
	if srv.lnurls.Load() != 3 || srv.verifies.Load() != 1 {
		t.Fatalf("%d LNURL and %d token requests, want 3 and 1", srv.lnurls.Load(), srv.verifies.Load())
	}
}

// jwt returns an unsigned token with the given payload; the client never verifies it.
func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

// fakeIssuer answers lnurl at /auth/lnurl (with %s standing for its own URL) and
// verify at /verify, and counts the logins.
func fakeIssuer(t *testing.T, lnurl string, verifyStatus int, verify string, logins *atomic.Int64) string {
	var self string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/lnurl":
			fmt.Fprintf(w, lnurl, self)
		case "/verify":
			logins.Add(1)
			if r.URL.Query().Get("sig") == "" || len(r.URL.Query().Get("key")) != 66 {
				http.Error(w, `{"status":"ERROR","reason":"no sig or key"}`, http.StatusBadRequest)
				return
			}
			w.WriteHeader(verifyStatus)
			_, _ = w.Write([]byte(verify))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	self = ts.URL
	return ts.URL + "/auth/lnurl"
}

// TestLNURLAuthFailures checks how each way a login can fail is reported, and that
// tokens without exp are kept.
func TestLNURLAuthFailures(t *testing.T) {
	t.Parallel()
	const k1 = "0000000000000000000000000000000000000000000000000000000000000001"
	login := "%s/verify?tag=login&k1=" + k1
	noAuth := vsstest.Start(t, vsstest.Config{}) // no LNURL-auth issuer
	for _, tc := range []struct {
		name       string
		url        func(logins *atomic.Int64) string
		keyErr     bool
		code       connect.Code
		message    string
		wantLogins int64
	}{
		{"no issuer", func(*atomic.Int64) string { return noAuth.URL + "/auth/lnurl" }, false, connect.CodeUnauthenticated, "status 404", 0},
		{"unreachable", func(*atomic.Int64) string { return "http://127.0.0.1:1/auth/lnurl" }, false, connect.CodeUnavailable, "connect", 0},
		{"not a URL", func(l *atomic.Int64) string { return fakeIssuer(t, "hello", 200, "", l) }, false, connect.CodeUnauthenticated, "not an LNURL", 0},
		{"not a login", func(l *atomic.Int64) string { return fakeIssuer(t, "%s/verify?tag=channelRequest&k1="+k1, 200, "", l) }, false, connect.CodeUnauthenticated, "not a login LNURL", 0},
		{"short k1", func(l *atomic.Int64) string { return fakeIssuer(t, "%s/verify?tag=login&k1=00ff", 200, "", l) }, false, connect.CodeUnauthenticated, "32-byte k1", 0},
		{"refused", func(l *atomic.Int64) string {
			return fakeIssuer(t, login, 403, `{"status":"ERROR","reason":"k1 already used"}`, l)
		}, false, connect.CodeUnauthenticated, "k1 already used", 1},
		{"issuer failing", func(l *atomic.Int64) string {
			return fakeIssuer(t, login, 503, `{"status":"ERROR","reason":"service unavailable"}`, l)
		}, false, connect.CodeUnavailable, "service unavailable", 3},
		{"OK without a token", func(l *atomic.Int64) string { return fakeIssuer(t, login, 200, `{"status":"OK"}`, l) }, false, connect.CodeUnauthenticated, "without a token", 1},
		{"token is not a JWT", func(l *atomic.Int64) string {
			return fakeIssuer(t, login, 200, `{"status":"OK","token":"opaque"}`, l)
		}, false, connect.CodeUnauthenticated, "not a JWT", 1},
		{"exp is not a number", func(l *atomic.Int64) string {
			return fakeIssuer(t, login, 200, `{"status":"OK","token":"`+jwt(`{"exp":"soon"}`)+`"}`, l)
		}, false, connect.CodeUnauthenticated, "numeric exp", 1},
		{"no linking key", func(l *atomic.Int64) string { return fakeIssuer(t, login, 200, "", l) }, true, connect.CodeUnauthenticated, "linking key for 127.0.0.1", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logins atomic.Int64
			cfg := vssclient.LNURLAuthConfig{URL: tc.url(&logins), LinkingKey: newKey(t)}
			if tc.keyErr {
				cfg.LinkingKeyFor = func(string) (*secp256k1.PrivateKey, error) { return nil, errors.New("locked") }
			}
			auth, err := vssclient.NewLNURLAuth(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c := vssclient.New(noAuth.URL, vssclient.WithHeaders(auth), fastRetries(3))
			_, err = c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
			if connect.CodeOf(err) != tc.code || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("GetObject: %v; want code %v and %q", err, tc.code, tc.message)
			}
			if logins.Load() != tc.wantLogins {
				t.Fatalf("%d token requests, want %d", logins.Load(), tc.wantLogins)
			}
		})
	}

	t.Run("token without exp is kept", func(t *testing.T) {
		t.Parallel()
		var logins atomic.Int64
		token := jwt(`{"sub":"x"}`)
		auth, err := vssclient.NewLNURLAuth(vssclient.LNURLAuthConfig{
			URL:        fakeIssuer(t, login, 200, `{"status":"OK","token":"`+token+`"}`, &logins),
			LinkingKey: newKey(t),
			Now:        func() time.Time { return time.Unix(1<<40, 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			h, err := auth.Headers(testCtx(t))
			if err != nil || h.Get("Authorization") != "Bearer "+token {
				t.Fatalf("Headers = %v, %v", h, err)
			}
		}
		if logins.Load() != 1 {
			t.Fatalf("%d logins, want 1", logins.Load())
		}
	})

	t.Run("configuration", func(t *testing.T) {
		t.Parallel()
		for _, cfg := range []vssclient.LNURLAuthConfig{
			{URL: "", LinkingKey: newKey(t)},
			{URL: "ftp://host/auth/lnurl", LinkingKey: newKey(t)},
			{URL: "lnurl1dp68gurn8ghj7", LinkingKey: newKey(t)},
			{URL: "https://vss.example.com/auth/lnurl"},
		} {
			if _, err := vssclient.NewLNURLAuth(cfg); err == nil {
				t.Errorf("NewLNURLAuth(%+v) accepted", cfg)
			}
		}
	})
}
