package app

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/pgtest"
)

// span is what the test receiver keeps of an exported span.
type span struct {
	name, trace, id, parent string
}

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps the spans it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				o.spans = append(o.spans, span{s.GetName(), hex.EncodeToString(s.GetTraceId()), hex.EncodeToString(s.GetSpanId()), hex.EncodeToString(s.GetParentSpanId())})
			}
		}
	}
	o.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// find returns the span named name, or the first descendant of parent whose name
// contains name when parent is set.
func (o *otlpReceiver) find(name string, parent *span) *span {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.spans {
		s := &o.spans[i]
		if parent == nil && s.name == name {
			return s
		}
		if parent != nil && s.trace == parent.trace && strings.Contains(s.name, name) && o.below(s, parent) {
			return s
		}
	}
	return nil
}

// below reports whether s descends from parent, directly or through spans in between
// (such as the span of the pgx batch that holds a write's statements). o.mu is held.
func (o *otlpReceiver) below(s, parent *span) bool {
	for hops := 0; s != nil && hops < len(o.spans); hops++ {
		if s.parent == parent.id {
			return true
		}
		var up *span
		for i := range o.spans {
			if o.spans[i].trace == s.trace && o.spans[i].id == s.parent {
				up = &o.spans[i]
				break
			}
		}
		s = up
	}
	return false
}

func (o *otlpReceiver) names() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n []string
	for _, s := range o.spans {
		n = append(n, s.name)
	}
	return n
}

func TestTracingExportsRPCAndDatabaseSpans(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	t.Cleanup(collector.Close)
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.URL+"/v1/traces")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
	t.Setenv("OTEL_SERVICE_NAME", "vss-test")

	url, stop, err := pgtest.StartCluster()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(stop)
	base := start(t, Config{DatabaseURL: url, Auth: AuthConfig{Schemes: "none"}})

	put := &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: 0, Value: []byte("v")}}}
	if st, e := legacyCall(t, base, "putObjects", "", put, nil); st != 200 {
		t.Fatalf("put: %d %v", st, e)
	}
	c := vssv1connect.NewVssServiceClient(http.DefaultClient, base)
	if _, err := c.GetObject(context.Background(), connect.NewRequest(&vssv1.GetObjectRequest{StoreId: "s", Key: "k"})); err != nil {
		t.Fatalf("connect get: %v", err)
	}

	// Each RPC has a server span, and the SQL it ran is a span below it in the same trace
	// (a write's statements run in a pgx batch, committed by the group commit under the
	// context of the request that led the batch).
	for _, want := range []struct{ rpc, sql string }{
		{"POST /vss/putObjects", "PutObjects"},
		{"vss.v1.VssService/GetObject", "GetObject"},
	} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			if root := recv.find(want.rpc, nil); root != nil && recv.find(want.sql, root) != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no span %q with a database child span %q within 10 s; spans: %q", want.rpc, want.sql, recv.names())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestTracingIsOffWithoutOTELVariables(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
	} {
		if tracingEnabled(func(k string) string { return env[k] }) {
			t.Errorf("tracing is on with %v", env)
		}
	}
	for _, env := range []map[string]string{
		{"OTEL_TRACES_EXPORTER": "console"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
		{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
	} {
		if !tracingEnabled(func(k string) string { return env[k] }) {
			t.Errorf("tracing is off with %v", env)
		}
	}
	tr, err := newTracing(context.Background(), func(string) string { return "" })
	if tr != nil || err != nil {
		t.Fatalf("newTracing without variables = %v, %v; want nil, nil", tr, err)
	}
	if h := http.NotFoundHandler(); tr.wrap(h) == nil || tr.postgresOptions() != nil {
		t.Error("tracing that is off still wraps handlers or the store")
	}
	if ics, _ := tr.interceptors(); ics != nil {
		t.Error("tracing that is off still adds Connect interceptors")
	}
}
