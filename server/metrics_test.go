package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/sqlite"
)

func TestLabelsOfRequests(t *testing.T) {
	for ct, want := range map[string]binding{
		"application/proto":          bindingConnect,
		"application/json":           bindingConnect,
		"application/connect+proto":  bindingConnect,
		"application/grpc":           bindingGRPC,
		"application/grpc+proto":     bindingGRPC,
		"application/grpc-web+proto": bindingGRPCWeb,
		"application/grpc-web-text":  bindingGRPCWeb,
		"":                           bindingConnect,
	} {
		if got := bindingOfContentType(ct); got != want {
			t.Errorf("bindingOfContentType(%q) = %s, want %s", ct, bindingNames[got], bindingNames[want])
		}
	}
	for _, c := range []struct {
		e    *Error
		want string
	}{
		{&Error{Code: vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION}, "no_such_key"},
		{&Error{Code: vssv1.ErrorCode_CONFLICT_EXCEPTION}, "conflict"},
		{&Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION}, "invalid_request"},
		{&Error{Code: vssv1.ErrorCode_AUTH_EXCEPTION}, "auth"},
		{&Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION}, "internal"},
		{&Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Unavailable: true}, "unavailable"},
		{&Error{Code: vssv1.ErrorCode_INVALID_REQUEST_EXCEPTION, Kind: KindQuota}, "quota"},
		{&Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Kind: KindRateLimited}, "rate_limited"},
	} {
		if got := resultNames[resultOf(c.e)]; got != c.want {
			t.Errorf("resultOf(%v) = %s, want %s", c.e, got, c.want)
		}
	}
	for _, c := range []struct {
		values []string
		want   string
	}{
		{nil, "missing"},
		{[]string{""}, "missing"},
		{[]string{"02abcdef"}, "signature"},
		{[]string{"Bearer abc"}, "bearer"},
		{[]string{"bearer abc"}, "bearer"},
		{[]string{"a", "b"}, "multiple_headers"},
	} {
		h := http.Header{}
		for _, v := range c.values {
			h.Add("Authorization", v)
		}
		if got := authReasonNames[authReasonOf(h)]; got != c.want {
			t.Errorf("authReasonOf(%q) = %s, want %s", c.values, got, c.want)
		}
	}
}

// TestMetricsSeriesAreBounded checks that every series exists from the start and that
// no request can add one: label values come only from fixed sets.
func TestMetricsSeriesAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, m)
	before, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Requests with arbitrary paths, users, content types and credentials.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/vss/getObject", bytes.NewReader([]byte{0xff})),
		httptest.NewRequest(http.MethodPost, "/vss/nonsense", nil),
		httptest.NewRequest(http.MethodPost, "/vss.v1.VssService/Nonsense", nil),
		httptest.NewRequest(http.MethodPost, "/vss.v1.VssService/GetObject", bytes.NewReader([]byte("x"))),
	} {
		r.Header.Set("Content-Type", "application/x-something-else")
		r.Header.Set("Authorization", "Bearer user-chosen-text")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	after, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("requests added series: %d before, %d after", before, after)
	}
	if n := testutil.ToFloat64(m.requests[rpcGetObject][bindingVSSHTTP][resultInvalid]); n != 1 {
		t.Errorf("undecodable VSS HTTP request counted %v times as invalid_request, want 1", n)
	}
	if n := testutil.ToFloat64(m.requests[rpcGetObject][bindingConnect][resultInvalid]); n != 1 {
		t.Errorf("Connect request with an unsupported content type counted %v times as invalid_request, want 1", n)
	}
}

// newTestHandler is the server on the in-memory store, without authentication.
func newTestHandler(t testing.TB, m *Metrics) http.Handler {
	t.Helper()
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	opts := Options{Store: store, Authorizer: NoAuth()}
	if m != nil {
		opts.Metrics, opts.MaxConcurrentRequests = m, 1024
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(context.Background(), NoAuthUser, storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: "k", Version: -1, Value: make([]byte, 1024)}}}); err != nil {
		t.Fatal(err)
	}
	return h
}

// BenchmarkMetricsOverhead compares the server's own work per request without and with
// metrics and the concurrency cap.
func BenchmarkMetricsOverhead(b *testing.B) {
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})
	for _, variant := range []string{"off", "on"} {
		var m *Metrics
		if variant == "on" {
			var err error
			if m, err = NewMetrics(prometheus.NewRegistry()); err != nil {
				b.Fatal(err)
			}
		}
		h := newTestHandler(b, m)
		for _, c := range []struct{ name, path, contentType string }{
			{"vss-http", "/vss/getObject", "application/octet-stream"},
			{"connect", "/vss.v1.VssService/GetObject", "application/proto"},
		} {
			b.Run(variant+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r := httptest.NewRequest(http.MethodPost, c.path, bytes.NewReader(get))
					r.Header.Set("Content-Type", c.contentType)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		}
	}
}
