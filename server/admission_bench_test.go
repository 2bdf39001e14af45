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

// BenchmarkAuthenticatedCalls is the server's work per GetObject of 64 users at once,
// each with its own identity, under the default concurrency limits.
func BenchmarkAuthenticatedCalls(b *testing.B) {
	store, err := sqlite.OpenMemory(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	auth := AuthorizerFunc(func(_ context.Context, h http.Header) (string, error) { return h.Get("Authorization"), nil })
	h, err := New(Options{Store: store, Authorizer: auth, MaxConcurrentRequests: 1024})
	if err != nil {
		b.Fatal(err)
	}
	get, _ := proto.Marshal(&vssv1.GetObjectRequest{StoreId: "s", Key: "global_version"})
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 64 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		user := fmt.Sprintf("%066x", next.Add(1)%64)
		for pb.Next() {
			r := httptest.NewRequest(http.MethodPost, "/vss/getObject", bytes.NewReader(get))
			r.Header.Set("Authorization", user)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}
