package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage/sqlite"
)

func TestPoolShareAndCap(t *testing.T) {
	t.Parallel()
	p := newPool(3, 2, 50*time.Millisecond)
	ctx := context.Background()
	for i := range 2 {
		if ok, _ := p.acquire(ctx, "a"); !ok {
			t.Fatalf("a's slot %d refused", i)
		}
	}
	// a holds its share: refused at once, whatever the pool has left.
	start := time.Now()
	if ok, share := p.acquire(ctx, "a"); ok || !share {
		t.Fatalf("a over its share: ok %v, share %v; want refused for its share", ok, share)
	}
	if d := time.Since(start); d > 40*time.Millisecond {
		t.Errorf("a refusal for the share waited %v, want none", d)
	}
	if ok, _ := p.acquire(ctx, "b"); !ok {
		t.Fatal("b refused while a holds only its share")
	}
	// The pool is full: c waits, then is refused for the pool, and holds nothing.
	if ok, share := p.acquire(ctx, "c"); ok || share {
		t.Fatalf("c with the pool full: ok %v, share %v; want refused for the pool", ok, share)
	}
	if p.keys() != 2 {
		t.Errorf("%d keys tracked, want 2 (a refused request leaves nothing behind)", p.keys())
	}
	// A release lets a waiting request in.
	got := make(chan bool)
	go func() { ok, _ := p.acquire(ctx, "c"); got <- ok }()
	time.Sleep(10 * time.Millisecond)
	p.release("a")
	if !<-got {
		t.Fatal("c did not get the slot a released")
	}
	p.release("a")
	p.release("b")
	p.release("c")
	if p.keys() != 0 || len(p.slots) != 0 {
		t.Errorf("after every release: %d keys, %d slots held; want none", p.keys(), len(p.slots))
	}
	// The empty key has no share.
	q := newPool(0, 1, 0)
	for i := range 5 {
		if ok, _ := q.acquire(ctx, ""); !ok {
			t.Fatalf("empty key, request %d refused", i)
		}
	}
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"192.0.2.7:1234":                  "192.0.2.7",
		"[::ffff:192.0.2.7]:1234":         "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:443":   "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":           "2001:db8:1:3::/64",
		"not an address":                  "not an address",
		"[fe80::1%eth0]:80":               "fe80::/64",
		"[2001:db8:1:2:3:4:5:6%eth0]:443": "2001:db8:1:2::/64",
	} {
		if got := ClientKey(addr); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

// heldRequests sends n requests whose bodies stop after one byte, one after the
// other, each once the previous one is reading its body (so holds its slot); they keep
// their slots until the test ends.
func heldRequests(t *testing.T, h http.Handler, n int, path, contentType, user, remote string) {
	t.Helper()
	var wg sync.WaitGroup
	var writers []*io.PipeWriter
	t.Cleanup(func() {
		for _, w := range writers {
			_ = w.CloseWithError(io.ErrUnexpectedEOF)
		}
		wg.Wait()
	})
	for i := range n {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		r := httptest.NewRequest(http.MethodPost, path, pr)
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Authorization", user)
		r.RemoteAddr = remote
		wg.Add(1)
		go func() { defer wg.Done(); h.ServeHTTP(httptest.NewRecorder(), r) }()
		read := make(chan error, 1)
		go func() { _, err := pw.Write([]byte{0x0a}); read <- err }()
		select {
		case err := <-read:
			if err != nil {
				t.Fatalf("held request %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("held request %d never read its body", i)
		}
	}
}

// eventually calls f until it returns true, for up to 10 s.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// TestUserShareOfSlots: one user's stalled uploads hold at most its share of the slots;
// its next call is refused at once with 503 (unavailable on Connect), and another user's
// calls go through on every binding.
func TestUserShareOfSlots(t *testing.T) {
	t.Parallel()
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// The user is whatever the Authorization header says.
	auth := AuthorizerFunc(func(_ context.Context, h http.Header) (string, error) {
		if u := h.Get("Authorization"); u != "" {
			return u, nil
		}
		return "", AuthError("no user")
	})
	h, err := New(Options{Store: store, Authorizer: auth, MaxConcurrentRequests: 8, MaxConcurrentPerUser: 3, QueueTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	heldRequests(t, h, 2, "/vss/putObjects", "application/octet-stream", "mallory", "192.0.2.1:1")
	heldRequests(t, h, 1, "/vss.v1.VssService/PutObjects", "application/proto", "mallory", "192.0.2.1:2")

	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
	call := func(path, contentType, user string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(get))
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Authorization", user)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// Once the held uploads have their slots, mallory is over its share.
	eventually(t, "mallory's held uploads take their slots", func() bool {
		return call("/vss/getObject", "application/octet-stream", "mallory").Code == http.StatusServiceUnavailable
	})
	if w := call("/vss/getObject", "application/octet-stream", "mallory"); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("mallory over its share on the VSS HTTP API: status %d, Retry-After %q; want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call("/vss.v1.VssService/GetObject", "application/proto", "mallory"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("mallory over its share on Connect: status %d, want 503 (unavailable)", w.Code)
	}
	for _, c := range []struct{ path, contentType string }{
		{"/vss/getObject", "application/octet-stream"},
		{"/vss.v1.VssService/GetObject", "application/proto"},
	} {
		if w := call(c.path, c.contentType, "alice"); w.Code != http.StatusOK {
			t.Errorf("alice on %s while mallory holds its share: status %d, want 200: %s", c.path, w.Code, w.Body)
		}
	}
	// A request without credentials never holds a slot: it is refused by authentication.
	if w := call("/vss/getObject", "application/octet-stream", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("no credentials: status %d, want 401", w.Code)
	}
}

// TestPublicBudgetIsSeparate: requests without credentials that hold every public slot
// of one address leave other addresses their share, and VSS calls untouched.
func TestPublicBudgetIsSeparate(t *testing.T) {
	t.Parallel()
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h, err := New(Options{Store: store, Authorizer: NoAuth(), MaxConcurrentRequests: 2,
		MaxConcurrentPublic: 4, MaxConcurrentPerAddress: 2, QueueTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// gRPC health checks with bodies that never arrive, from one address.
	heldRequests(t, h, 2, "/grpc.health.v1.Health/Check", "application/proto", "", "192.0.2.1:1")
	check := func(path, remote string) int {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	eventually(t, "/healthz from the flooding address refused", func() bool {
		return check("/healthz", "192.0.2.1:9") == http.StatusServiceUnavailable
	})
	if code := check("/healthz", "192.0.2.2:9"); code != http.StatusOK {
		t.Errorf("/healthz from another address: status %d, want 200", code)
	}
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
	r := httptest.NewRequest(http.MethodPost, "/vss/getObject", bytes.NewReader(get))
	r.RemoteAddr = "192.0.2.1:9"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("a VSS call from the flooding address: status %d, want 200: %s", w.Code, w.Body)
	}
}

// BenchmarkPoolAcquire is the cost of admission per VSS call: a user's share and a
// slot, taken and given back, by many users at once.
func BenchmarkPoolAcquire(b *testing.B) {
	p := newPool(1024, 64, 0)
	users := make([]string, 64)
	for i := range users {
		users[i] = fmt.Sprintf("%066x", i) // as long as a signature identity
	}
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		user := users[next.Add(1)%int64(len(users))]
		for pb.Next() {
			if ok, _ := p.acquire(ctx, user); !ok {
				b.Fatal("refused")
			}
			p.release(user)
		}
	})
}
