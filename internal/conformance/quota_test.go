package conformance_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// quotaStores opens each store with quota q, fresh for one test.
var quotaStores = []struct {
	name string
	open func(t *testing.T, q storage.Quota) storage.Store
}{
	{"postgres", func(t *testing.T, q storage.Quota) storage.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.WithQuota(q))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"embedded", func(t *testing.T, q storage.Quota) storage.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "vss.db"), sqlite.WithQuota(q))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"memory", func(t *testing.T, q storage.Quota) storage.Store {
		s, err := sqlite.OpenMemory(context.Background(), sqlite.WithQuota(q))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// serveOptions starts a server with opts (Store, Logger and Authorizer filled in when
// missing) on a loopback port and returns its base URL.
func serveOptions(t *testing.T, opts server.Options) string {
	t.Helper()
	if opts.Authorizer == nil {
		opts.Authorizer = testAuth
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = opts.Store.Close()
	})
	return "http://" + ln.Addr().String()
}

// failure returns err as a *conformance.Failure or fails t.
func failure(t *testing.T, err error) *conformance.Failure {
	t.Helper()
	var f *conformance.Failure
	if !errors.As(err, &f) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	return f
}

// wantQuotaFailure checks a refusal for quota: INVALID_REQUEST_EXCEPTION with msg,
// HTTP 400 on the VSS HTTP API and resource_exhausted on Connect.
func wantQuotaFailure(t *testing.T, binding string, err error, msg string) {
	t.Helper()
	f := failure(t, err)
	if f.Code != vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION || f.Message != msg {
		t.Fatalf("refusal %s: %q, want INVALID_REQUEST_EXCEPTION: %q", f.Code, f.Message, msg)
	}
	if binding == "vss-http" && f.Status != http.StatusBadRequest || binding != "vss-http" && f.ConnectCode != connect.CodeResourceExhausted {
		t.Fatalf("refusal with status %d, connect code %v; want 400 on the VSS HTTP API, resource_exhausted on Connect", f.Status, f.ConnectCode)
	}
}

// TestQuotaContract runs the whole contract suite with quotas on (and never reached),
// so that every rule also holds on the stores' quota-counting write path, on every
// store and through every binding.
func TestQuotaContract(t *testing.T) {
	for _, st := range quotaStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := serveOptions(t, server.Options{Store: st.open(t, storage.Quota{MaxBytes: 1 << 40, MaxKeys: 1 << 40})})
			for _, b := range conformance.Bindings(conformance.TestUser) {
				t.Run(b.Name, func(t *testing.T) {
					conformance.Run(t, b.New(base))
				})
			}
		})
	}
}

// TestQuotaRefusals fills a user's quota through each binding on each store.
func TestQuotaRefusals(t *testing.T) {
	const maxBytes, maxKeys = 100, 5
	bytesMsg := "storage quota exceeded: at most 100 bytes per user"
	keysMsg := "key quota exceeded: at most 5 keys per user"
	for _, st := range quotaStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			base := serveOptions(t, server.Options{Store: st.open(t, storage.Quota{MaxBytes: maxBytes, MaxKeys: maxKeys})})
			for _, b := range conformance.Bindings(conformance.TestUser) {
				t.Run(b.Name, func(t *testing.T) {
					ctx := context.Background()
					c, user := b.New(base), "quota-"+b.Name
					put := func(store string, gv *int64, items ...*vssv1.KeyValue) error {
						_, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, GlobalVersion: gv, TransactionItems: items})
						return err
					}
					kv := func(key string, version int64, size int) *vssv1.KeyValue {
						return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(strings.Repeat("v", size))}
					}
					missing := func(store, key string) {
						t.Helper()
						_, err := c.GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: store, Key: key})
						if f := failure(t, err); f.Code != vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION {
							t.Fatalf("%s/%s: %v, want NO_SUCH_KEY", store, key, f)
						}
					}
					// Two entries of 2 + 48 bytes fill the byte quota exactly, across stores.
					if err := put("a", nil, kv("k1", 0, 48)); err != nil {
						t.Fatal(err)
					}
					if err := put("b", nil, kv("k2", 0, 48)); err != nil {
						t.Fatal(err)
					}
					wantQuotaFailure(t, b.Name, put("a", nil, kv("k3", 0, 0)), bytesMsg)
					missing("a", "k3")
					// A refused request writes nothing, not even its global version.
					wantQuotaFailure(t, b.Name, put("a", i64(0), kv("k1", 1, 40), kv("k3", 0, 20)), bytesMsg)
					missing("a", "k3")
					if gv, err := c.ListKeyVersions(ctx, user, &vssv1.ListKeyVersionsRequest{StoreId: "a"}); err != nil || gv.GetGlobalVersion() != 0 {
						t.Fatalf("global version after a refused put: %v, %v", gv.GetGlobalVersion(), err)
					}
					// Shrinking writes pass: a smaller value, a delete.
					if err := put("a", nil, kv("k1", 1, 8)); err != nil { // 60 bytes
						t.Fatal(err)
					}
					if _, err := c.DeleteObject(ctx, user, &vssv1.DeleteObjectRequest{StoreId: "b", KeyValue: kv("k2", 1, 0)}); err != nil {
						t.Fatal(err) // 10 bytes, 1 key
					}
					// Keys: k1 and three more, and a global version row, make five.
					if err := put("a", nil, kv("k3", 0, 1), kv("k4", 0, 1), kv("k5", 0, 1)); err != nil {
						t.Fatal(err)
					}
					if err := put("c", i64(0)); err != nil {
						t.Fatal(err)
					}
					wantQuotaFailure(t, b.Name, put("a", nil, kv("k6", 0, 0)), keysMsg)
					missing("a", "k6")
					// Replacing an existing key adds no key.
					if err := put("a", nil, kv("k5", -1, 2)); err != nil {
						t.Fatal(err)
					}
					// Another user has a quota of its own.
					if _, err := c.PutObjects(ctx, user+"-2", &vssv1.PutObjectRequest{StoreId: "a", TransactionItems: []*vssv1.KeyValue{kv("k1", 0, 98)}}); err != nil {
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// TestRateLimit checks the per-user rate limit through each binding: a burst passes,
// then the user is refused with INTERNAL_SERVER_EXCEPTION "rate limited", HTTP 429 or
// resource_exhausted, and a Retry-After, while another user is not affected.
func TestRateLimit(t *testing.T) {
	for _, st := range quotaStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			// One request per 10 s after a burst of 3: the test never earns a token back.
			base := serveOptions(t, server.Options{Store: st.open(t, storage.Quota{}), RateLimit: server.RateLimit{Rate: 0.1, Burst: 3}})
			for _, b := range conformance.Bindings(conformance.TestUser) {
				t.Run(b.Name, func(t *testing.T) {
					ctx := context.Background()
					c, user := b.New(base), "rate-"+b.Name
					get := func(user string) error {
						_, err := c.GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
						var f *conformance.Failure
						if errors.As(err, &f) && f.Code == vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION {
							return nil
						}
						return err
					}
					if _, err := c.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: "s"}); err != nil {
						t.Fatal(err)
					}
					for i := range 2 {
						if err := get(user); err != nil {
							t.Fatalf("request %d of the burst: %v", i+2, err)
						}
					}
					for range 2 {
						f := failure(t, get(user))
						if f.Code != vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION || f.Message != "rate limited" {
							t.Fatalf("refusal: %v, want INTERNAL_SERVER_EXCEPTION: rate limited", f)
						}
						if b.Name == "vss-http" && f.Status != http.StatusTooManyRequests || b.Name != "vss-http" && f.ConnectCode != connect.CodeResourceExhausted {
							t.Fatalf("refusal with status %d, connect code %v; want 429 or resource_exhausted", f.Status, f.ConnectCode)
						}
						if n, err := strconv.Atoi(f.RetryAfter); err != nil || n < 1 || n > 10 {
							t.Fatalf("Retry-After = %q, want 1..10 seconds", f.RetryAfter)
						}
					}
					// Refused requests cost nothing and another user has a bucket of its own.
					if err := get(user + "-other"); err != nil {
						t.Fatal(err)
					}
					// A request refused by authentication is not counted against anyone.
					if _, err := c.GetObject(ctx, "", &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}); failure(t, err).Code != vssv1.ErrorCode_AUTH_EXCEPTION {
						t.Fatalf("unauthenticated request: %v", err)
					}
				})
			}
		})
	}
}

// TestRateLimitLNURL checks the limit per client address on the LNURL-auth endpoints,
// which are not authenticated.
func TestRateLimitLNURL(t *testing.T) {
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := serveOptions(t, server.Options{
		Store:     store,
		RateLimit: server.RateLimit{Rate: 0.1, Burst: 2},
		Routes: func(mux *http.ServeMux) {
			mux.HandleFunc("GET /auth/lnurl", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("lnurl")) })
			mux.HandleFunc("GET /auth/lnurl/verify", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"OK"}`)) })
		},
	})
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	for _, p := range []string{"/auth/lnurl", "/auth/lnurl/verify"} {
		if resp, _ := get(p); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, resp.StatusCode)
		}
	}
	resp, body := get("/auth/lnurl")
	if resp.StatusCode != http.StatusTooManyRequests || body != `{"status":"ERROR","reason":"rate limited"}`+"\n" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: status %d, Retry-After %q, body %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Other paths are not limited by address.
	for range 5 {
		if resp, _ := get("/healthz"); resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz: status %d", resp.StatusCode)
		}
	}
}

func i64(v int64) *int64 { return &v }
