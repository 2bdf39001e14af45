package vssclient_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// A fault is what the front of the server does to one request instead of, or besides,
// passing it to the real server.
type fault func(w http.ResponseWriter, r *http.Request, next http.Handler)

// connectError answers a Connect error with the given HTTP status and code, as a
// server or a proxy in front of it would.
func connectError(status int, code string) fault {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"code":"` + code + `","message":"injected failure"}`))
	}
}

// proxyStatus answers a bare status without a Connect body, as a load balancer does.
func proxyStatus(status int) fault {
	return func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		http.Error(w, "injected by the proxy", status)
	}
}

// dropConnection closes the connection without an answer: a transport error.
func dropConnection(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

// resetConnection aborts the connection with a TCP reset, which connect-go reports as
// canceled although the caller canceled nothing.
func resetConnection(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

// loseAnswer lets the real server apply the request, then answers unavailable, as when
// the connection breaks after the commit.
func loseAnswer(w http.ResponseWriter, r *http.Request, next http.Handler) {
	next.ServeHTTP(httptest.NewRecorder(), r)
	connectError(http.StatusServiceUnavailable, "unavailable")(w, r, next)
}

// stall holds the request until the client gives up on it.
func stall(w http.ResponseWriter, r *http.Request, next http.Handler) {
	_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
	select {
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
	}
}

// faultyServer is a real server behind a front that applies faults, one per request,
// to the first requests of the VSS service, and counts the service's requests.
type faultyServer struct {
	*vsstest.Server
	mu       sync.Mutex
	faults   []fault
	requests atomic.Int64
}

func startFaulty(t *testing.T, faults ...fault) *faultyServer {
	f := &faultyServer{faults: faults}
	f.Server = vsstest.Start(t, vsstest.Config{Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/vss.v1.VssService/") {
				next.ServeHTTP(w, r)
				return
			}
			f.requests.Add(1)
			f.mu.Lock()
			var fl fault
			if len(f.faults) > 0 {
				fl, f.faults = f.faults[0], f.faults[1:]
			}
			f.mu.Unlock()
			if fl == nil {
				next.ServeHTTP(w, r)
				return
			}
			fl(w, r, next)
		})
	}})
	return f
}

// then makes the next requests meet faults, and restarts the count.
func (f *faultyServer) then(faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults
	f.requests.Store(0)
}

// fastRetries keeps the tests quick: waits of a few milliseconds.
func fastRetries(maxAttempts int) vssclient.Option {
	return vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: maxAttempts, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
}

// TestRetries puts a key through a front that fails the first requests: failures that
// may pass are retried until the attempts run out, answers that will not change are
// returned at once.
func TestRetries(t *testing.T) {
	t.Parallel()
	unavailable := connectError(http.StatusServiceUnavailable, "unavailable")
	for _, tc := range []struct {
		name         string
		faults       []fault
		maxAttempts  int
		wantAttempts int64
		wantCode     connect.Code // 0: success
	}{
		{"unavailable twice, then success", []fault{unavailable, unavailable}, 5, 3, 0},
		{"internal, then success", []fault{connectError(500, "internal")}, 5, 2, 0},
		{"unknown, then success", []fault{connectError(500, "unknown")}, 5, 2, 0},
		{"proxy 502 and 503, then success", []fault{proxyStatus(502), proxyStatus(503)}, 5, 3, 0},
		{"dropped connection, then success", []fault{dropConnection}, 5, 2, 0},
		{"reset connection, then success", []fault{resetConnection, resetConnection}, 5, 3, 0},
		{"attempts run out", []fault{unavailable, unavailable, unavailable}, 3, 3, connect.CodeUnavailable},
		{"retries off", []fault{unavailable}, 1, 1, connect.CodeUnavailable},
		{"aborted is final", []fault{connectError(409, "aborted")}, 5, 1, connect.CodeAborted},
		{"not_found is final", []fault{connectError(404, "not_found")}, 5, 1, connect.CodeNotFound},
		{"invalid_argument is final", []fault{connectError(400, "invalid_argument")}, 5, 1, connect.CodeInvalidArgument},
		{"unauthenticated is final", []fault{connectError(401, "unauthenticated")}, 5, 1, connect.CodeUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startFaulty(t, tc.faults...)
			c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))), fastRetries(tc.maxAttempts))
			_, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}})
			if got := srv.requests.Load(); got != tc.wantAttempts {
				t.Errorf("%d attempts, want %d", got, tc.wantAttempts)
			}
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("PutObjects: %v", err)
				}
				got, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
				if err != nil || got.GetValue().GetVersion() != 1 {
					t.Fatalf("after the retried put: %v, %v", got, err)
				}
				return
			}
			if connect.CodeOf(err) != tc.wantCode {
				t.Fatalf("PutObjects: %v, want code %v", err, tc.wantCode)
			}
		})
	}
}

// TestRetriedConditionalPutMayConflict shows the ambiguity the package documentation
// describes: the first attempt commits but its answer is lost, so the retry of the
// same create finds the key and is a conflict, although the value is the caller's.
func TestRetriedConditionalPutMayConflict(t *testing.T) {
	t.Parallel()
	srv := startFaulty(t, loseAnswer)
	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))), fastRetries(3))
	_, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "mine")}})
	if !vssclient.IsConflict(err) || srv.requests.Load() != 2 {
		t.Fatalf("PutObjects after a lost answer: %v in %d attempts, want a conflict in 2", err, srv.requests.Load())
	}
	got, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	if err != nil || string(got.GetValue().GetValue()) != "mine" || got.GetValue().GetVersion() != 1 {
		t.Fatalf("the key holds %v, %v; want the caller's own write", got, err)
	}
	// An unconditional write has no such ambiguity: its retry succeeds.
	srv.then(loseAnswer)
	if _, err := c.PutObjects(testCtx(t), &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", -1, "again")}}); err != nil {
		t.Fatalf("unconditional put after a lost answer: %v", err)
	}
}

// TestTimeoutPerAttempt stalls the first attempt: it times out after WithTimeout and
// the second attempt succeeds, within the call's context.
func TestTimeoutPerAttempt(t *testing.T) {
	t.Parallel()
	srv := startFaulty(t, stall)
	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))), fastRetries(3), vssclient.WithTimeout(time.Second))
	start := time.Now()
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"}); err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	if d := time.Since(start); d < time.Second || srv.requests.Load() != 2 {
		t.Fatalf("took %v in %d attempts; want the first attempt to time out and a second one", d, srv.requests.Load())
	}

	// Without retries the timeout is the answer.
	srv.then(stall)
	c = vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))), fastRetries(1), vssclient.WithTimeout(100*time.Millisecond))
	_, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
	if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("stalled attempt without retries: %v, want deadline_exceeded", err)
	}
}

// TestContextEndsRetries cancels the call while it waits between attempts: it returns
// at once with the context's error, and makes no further attempt.
func TestContextEndsRetries(t *testing.T) {
	t.Parallel()
	unavailable := connectError(http.StatusServiceUnavailable, "unavailable")
	srv := startFaulty(t, unavailable, unavailable, unavailable)
	c := vssclient.New(srv.URL, vssclient.WithHeaders(vssclient.Signature(newKey(t))),
		vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Hour, MaxBackoff: time.Hour}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // long enough for the first attempt
	defer cancel()
	start := time.Now()
	_, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	if !errors.Is(err, context.DeadlineExceeded) || connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("GetObject: %v, want the context's deadline", err)
	}
	if !strings.Contains(err.Error(), "injected failure") {
		t.Errorf("error %q does not name the last failure", err)
	}
	if d := time.Since(start); d > 5*time.Second || srv.requests.Load() != 1 {
		t.Fatalf("returned after %v and %d attempts", d, srv.requests.Load())
	}
}

// TestSignatureIsFreshPerAttempt checks that each attempt asks the header provider
// again, so a retry never reuses stale credentials.
func TestSignatureIsFreshPerAttempt(t *testing.T) {
	t.Parallel()
	unavailable := connectError(http.StatusServiceUnavailable, "unavailable")
	srv := startFaulty(t, unavailable, unavailable)
	var calls atomic.Int64
	sig := vssclient.Signature(newKey(t))
	c := vssclient.New(srv.URL, fastRetries(5), vssclient.WithHeaders(vssclient.HeaderFunc(func(ctx context.Context) (http.Header, error) {
		calls.Add(1)
		return sig.Headers(ctx)
	})))
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 {
		t.Fatalf("header provider called %d times for 3 attempts", calls.Load())
	}
	// A provider's own failure is unauthenticated and is not retried.
	calls.Store(0)
	c = vssclient.New(srv.URL, fastRetries(5), vssclient.WithHeaders(vssclient.HeaderFunc(func(context.Context) (http.Header, error) {
		calls.Add(1)
		return nil, errors.New("no key")
	})))
	if _, err := c.GetObject(testCtx(t), &vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"}); !vssclient.IsUnauthenticated(err) || calls.Load() != 1 {
		t.Fatalf("failing provider: %v after %d calls", err, calls.Load())
	}
}
