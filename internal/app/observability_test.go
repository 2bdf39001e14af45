package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/sigauth"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
)

// start runs the server in-process on a free loopback port and returns its base URL;
// unlike serve it keeps cfg's database and logs warnings to the test log.
func start(t *testing.T, cfg Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	cfg.Listen = "127.0.0.1:0"
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = MemoryURL
	}
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Ready = func(a net.Addr) { ready <- a }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-ready:
		return "http://" + a.String()
	case err := <-done:
		done <- err
		t.Fatalf("server did not start: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("server did not start within 60 s")
	}
	return ""
}

// scrape fetches base+/metrics without credentials and parses it.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url+MetricsPath, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	return fams
}

// sample returns the metric of family name whose labels include want, or nil.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func counterValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := sample(fams, name, labels)
	if m == nil {
		t.Fatalf("no sample %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s%v is neither counter, gauge nor histogram", name, labels)
	return 0
}

// legacyCall posts msg to the VSS HTTP API and decodes the response into out (or the
// ErrorResponse on failure); it returns the status.
func legacyCall(t *testing.T, base, op, authz string, msg, out proto.Message) (int, *vssv1.ErrorResponse) {
	t.Helper()
	body, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/vss/"+op, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		var e vssv1.ErrorResponse
		if err := proto.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s: status %d with undecodable body: %v", op, res.StatusCode, err)
		}
		return res.StatusCode, &e
	}
	if out != nil {
		if err := proto.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode, nil
}

// h2c is an HTTP client speaking cleartext HTTP/2, as gRPC needs.
func h2c() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{}}}
}

func TestMetricsCountRequestsByBindingAndResult(t *testing.T) {
	base := start(t, Config{Auth: AuthConfig{Schemes: "signature"}})
	priv, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	sig := func() string { return sigauth.Header(priv, time.Now()) }
	ctx := context.Background()

	// The VSS HTTP API: a write, a conflicting write, a read, a missing key, and
	// three authentication failures of different kinds.
	put := &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: bytes.Repeat([]byte{7}, 1000)}}}
	if st, e := legacyCall(t, base, "putObjects", sig(), put, nil); st != 200 {
		t.Fatalf("put: %d %v", st, e)
	}
	if st, e := legacyCall(t, base, "putObjects", sig(), put, nil); st != 409 || e.GetErrorCode() != vssv1.ErrorCode_CONFLICT_EXCEPTION {
		t.Fatalf("second put: %d %v, want 409 conflict", st, e)
	}
	var got vssv1.GetObjectResponse
	if st, e := legacyCall(t, base, "getObject", sig(), &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}, &got); st != 200 {
		t.Fatalf("get: %d %v", st, e)
	}
	if st, _ := legacyCall(t, base, "getObject", sig(), &vssv1.GetObjectRequest{StoreId: "s", Key: "missing"}, nil); st != 404 {
		t.Fatalf("get missing: %d, want 404", st)
	}
	for _, authz := range []string{"", "deadbeef", "Bearer not-a-jwt"} {
		if st, _ := legacyCall(t, base, "getObject", authz, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}, nil); st != 401 {
			t.Fatalf("get with Authorization %q: %d, want 401", authz, st)
		}
	}

	// Connect, gRPC and gRPC-Web.
	c := vssclient.New(base, vssclient.WithHeaders(vssclient.Signature(priv)), vssclient.WithRetry(vssclient.RetryPolicy{MaxAttempts: 1}))
	if _, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "k"}); err != nil {
		t.Fatalf("connect get: %v", err)
	}
	if _, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "s", Key: "missing"}); !vssclient.IsNotFound(err) {
		t.Fatalf("connect get missing: %v, want not found", err)
	}
	withSig := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", sig())
			return next(ctx, req)
		}
	}))
	grpc := vssv1connect.NewVssServiceClient(h2c(), base, connect.WithGRPC(), withSig)
	if _, err := grpc.PutObjects(ctx, connect.NewRequest(put)); connect.CodeOf(err) != connect.CodeAborted {
		t.Fatalf("grpc put: %v, want aborted", err)
	}
	if _, err := grpc.ListKeyVersions(ctx, connect.NewRequest(&vssv1.ListKeyVersionsRequest{StoreId: "s"})); err != nil {
		t.Fatalf("grpc list: %v", err)
	}
	grpcNoAuth := vssv1connect.NewVssServiceClient(h2c(), base, connect.WithGRPC())
	if _, err := grpcNoAuth.GetObject(ctx, connect.NewRequest(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("grpc get without credentials: %v, want unauthenticated", err)
	}
	web := vssv1connect.NewVssServiceClient(http.DefaultClient, base, connect.WithGRPCWeb(), withSig)
	if _, err := web.DeleteObject(ctx, connect.NewRequest(&vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: &vssv1.KeyValue{Key: "other", Version: -1}})); err != nil {
		t.Fatalf("grpc-web delete: %v", err)
	}
	if _, err := web.GetObject(ctx, connect.NewRequest(&vssv1.GetObjectRequest{StoreId: "", Key: strings.Repeat("k", server.MaxKeyLength+1)})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("grpc-web get with an over-long key: %v, want invalid argument", err)
	}

	fams := scrape(t, base)
	req := func(rpc, binding, result string) float64 {
		return counterValue(t, fams, server.MetricRequests, map[string]string{"rpc": rpc, "binding": binding, "result": result})
	}
	for _, c := range []struct {
		rpc, binding, result string
		want                 float64
	}{
		{"PutObjects", "vss-http", "ok", 1},
		{"PutObjects", "vss-http", "conflict", 1},
		{"GetObject", "vss-http", "ok", 1},
		{"GetObject", "vss-http", "no_such_key", 1},
		{"GetObject", "vss-http", "auth", 3},
		{"GetObject", "connect", "ok", 1},
		{"GetObject", "connect", "no_such_key", 1},
		{"PutObjects", "grpc", "conflict", 1},
		{"ListKeyVersions", "grpc", "ok", 1},
		{"GetObject", "grpc", "auth", 1},
		{"DeleteObject", "grpc-web", "ok", 1},
		{"GetObject", "grpc-web", "invalid_request", 1},
		{"PutObjects", "connect", "ok", 0},
		{"GetObject", "vss-http", "internal", 0},
	} {
		if got := req(c.rpc, c.binding, c.result); got != c.want {
			t.Errorf("%s{rpc=%s,binding=%s,result=%s} = %v, want %v", server.MetricRequests, c.rpc, c.binding, c.result, got, c.want)
		}
	}
	for _, c := range []struct {
		reason string
		want   float64
	}{{"missing", 2}, {"signature", 1}, {"bearer", 1}, {"multiple_headers", 0}} {
		if got := counterValue(t, fams, server.MetricAuthFailures, map[string]string{"reason": c.reason}); got != c.want {
			t.Errorf("%s{reason=%s} = %v, want %v", server.MetricAuthFailures, c.reason, got, c.want)
		}
	}
	// Latency is observed for every request, sizes for decoded messages.
	if got := counterValue(t, fams, server.MetricRequestDuration, map[string]string{"rpc": "GetObject", "binding": "vss-http"}); got != 5 {
		t.Errorf("GetObject vss-http duration count = %v, want 5", got)
	}
	size := sample(fams, server.MetricRequestBytes, map[string]string{"rpc": "PutObjects", "binding": "vss-http"})
	if size == nil || size.Histogram.GetSampleCount() != 2 || size.Histogram.GetSampleSum() < 2000 {
		t.Errorf("PutObjects vss-http request sizes = %v, want 2 samples of over 1000 bytes", size)
	}
	resp := sample(fams, server.MetricResponseBytes, map[string]string{"rpc": "GetObject", "binding": "connect"})
	if resp == nil || resp.Histogram.GetSampleCount() != 1 || resp.Histogram.GetSampleSum() < 1000 {
		t.Errorf("GetObject connect response sizes = %v, want 1 sample of over 1000 bytes", resp)
	}
	if got := counterValue(t, fams, server.MetricInFlight, nil); got != 0 {
		t.Errorf("%s = %v after all requests ended, want 0", server.MetricInFlight, got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "vss_body_progress_cutoffs_total", server.MetricOverloadRefusals} {
		if fams[name] == nil {
			t.Errorf("metric %s is missing", name)
		}
	}
	if fams["vss_db_pool_max_connections"] != nil {
		t.Error("the in-memory store reports pool statistics")
	}
}

func TestMetricsOnTheirOwnAddressOrOff(t *testing.T) {
	t.Run("own address", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Observability: ObservabilityConfig{MetricsListen: addr}})
		if res, _ := do(t, http.MethodGet, base+MetricsPath, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("main port %s: status %d, want 404", MetricsPath, res.StatusCode)
		}
		if st, _ := legacyCall(t, base, "getObject", "", &vssv1.GetObjectRequest{Key: "k"}, nil); st != 404 {
			t.Fatalf("get: %d", st)
		}
		fams := scrape(t, "http://"+addr)
		if got := counterValue(t, fams, server.MetricRequests, map[string]string{"rpc": "GetObject", "binding": "vss-http", "result": "no_such_key"}); got != 1 {
			t.Errorf("no_such_key on the metrics port = %v, want 1", got)
		}
	})
	t.Run("off", func(t *testing.T) {
		base := start(t, Config{Auth: AuthConfig{Schemes: "none"}, Observability: ObservabilityConfig{DisableMetrics: true}})
		if res, _ := do(t, http.MethodGet, base+MetricsPath, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s with metrics off: status %d, want 404", MetricsPath, res.StatusCode)
		}
		if st, _ := legacyCall(t, base, "getObject", "", &vssv1.GetObjectRequest{Key: "k"}, nil); st != 404 {
			t.Fatalf("get with metrics off: %d, want 404", st)
		}
	})
}

func TestMetricsReportPostgresPool(t *testing.T) {
	url, stop, err := pgtest.StartCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(stop)
	base := start(t, Config{DatabaseURL: url, Auth: AuthConfig{Schemes: "none"}})
	for i := range 3 {
		put := &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: int64(i)}}}
		if st, e := legacyCall(t, base, "putObjects", "", put, nil); st != 200 {
			t.Fatalf("put %d: %d %v", i, st, e)
		}
	}
	fams := scrape(t, base)
	if got := counterValue(t, fams, "vss_db_pool_max_connections", nil); got < 1 {
		t.Errorf("vss_db_pool_max_connections = %v, want at least 1", got)
	}
	if got := counterValue(t, fams, "vss_db_pool_acquires_total", nil); got < 3 {
		t.Errorf("vss_db_pool_acquires_total = %v, want at least 3 (one per request)", got)
	}
	if got := counterValue(t, fams, "vss_db_pool_total_connections", nil); got < 1 {
		t.Errorf("vss_db_pool_total_connections = %v, want at least 1", got)
	}
	for _, name := range []string{"vss_db_pool_acquired_connections", "vss_db_pool_idle_connections", "vss_db_pool_acquire_duration_seconds_total", "vss_db_pool_empty_acquires_total", "vss_db_pool_canceled_acquires_total"} {
		if fams[name] == nil {
			t.Errorf("metric %s is missing", name)
		}
	}
	if got := counterValue(t, fams, server.MetricRequests, map[string]string{"rpc": "PutObjects", "binding": "vss-http", "result": "ok"}); got != 3 {
		t.Errorf("PutObjects ok = %v, want 3", got)
	}
}
