package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage/sqlite"
)

// BenchmarkAuthenticatedCalls is the server's work per call of 64 users at once, each
// with its own identity, with the per-user caps (slots and upload bytes) off and at
// their defaults: the difference is what fairness between users costs per call.
//
//	go test ./server -run '^$' -bench AuthenticatedCalls -count 6
func BenchmarkAuthenticatedCalls(b *testing.B) {
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"caps=off", Options{MaxConcurrentRequests: 1024, MaxConcurrentPerUser: -1}},
		{"caps=default", Options{MaxConcurrentRequests: 1024, MaxUploadBytes: DefaultMaxUploadBytes}},
	} {
		for _, op := range []string{"getObject", "putObjects"} {
			b.Run(c.name+"/"+op, func(b *testing.B) { benchmarkCalls(b, c.opts, op) })
		}
	}
}

func benchmarkCalls(b *testing.B, opts Options, op string) {
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	opts.Store = store
	opts.Authorizer = AuthorizerFunc(func(_ context.Context, h http.Header) (string, error) { return h.Get("Authorization"), nil })
	h, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	var body []byte
	if op == "getObject" {
		body, _ = proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
	} else {
		body, _ = proto.Marshal(&vssv1.PutObjectRequest{StoreId: "s",
			TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: bytes.Repeat([]byte{'v'}, 1024)}}})
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprintf("%066x", next.Add(1)%64)
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/vss/"+op, bytes.NewReader(body))
			r.Header.Set("Authorization", user)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
