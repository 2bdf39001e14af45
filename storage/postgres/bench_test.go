package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/govss/vss/storage"
)

// BenchmarkPut measures one Put of each shape against a local PostgreSQL, one request at
// a time: the statement's own cost, to compare its versions (go test -bench Put
// -benchtime 500x ./storage/postgres).
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	runs := 0
	for _, c := range []struct {
		name string
		// req returns the i-th request; setup writes what it needs first.
		setup func(store string)
		req   func(store string, i int) storage.PutRequest
	}{
		{"1 unconditional", nil, func(store string, i int) storage.PutRequest {
			return storage.PutRequest{StoreID: store, Puts: []storage.KeyValue{kv("k", -1, "value")}}
		}},
		{"1 conditional update", func(store string) { put(b, s, "u", store, kv("k", 0, "v")) }, func(store string, i int) storage.PutRequest {
			return storage.PutRequest{StoreID: store, Puts: []storage.KeyValue{kv("k", int64(i+1), "value")}}
		}},
		{"1 create", nil, func(store string, i int) storage.PutRequest {
			return storage.PutRequest{StoreID: store, Puts: []storage.KeyValue{kv(fmt.Sprintf("k%d", i), 0, "value")}}
		}},
		{"100 creates", nil, func(store string, i int) storage.PutRequest {
			puts := make([]storage.KeyValue, 100)
			for j := range puts {
				puts[j] = kv(fmt.Sprintf("k%d-%03d", i, j), 0, "value")
			}
			return storage.PutRequest{StoreID: store, Puts: puts}
		}},
		{"100 conditional updates", func(store string) { put(b, s, "u", store, keyValues(100, 0)...) }, func(store string, i int) storage.PutRequest {
			return storage.PutRequest{StoreID: store, Puts: keyValues(100, int64(i+1))}
		}},
		{"10 unconditional and global version", nil, func(store string, i int) storage.PutRequest {
			puts := append(keyValues(10, -1), kv(storage.GlobalVersionKey, int64(i), ""))
			return storage.PutRequest{StoreID: store, Puts: puts}
		}},
		{"create and delete", nil, func(store string, i int) storage.PutRequest {
			req := storage.PutRequest{StoreID: store, Puts: []storage.KeyValue{kv(fmt.Sprintf("k%d", i), 0, "value")}}
			if i > 0 {
				req.Deletes = []storage.KeyValue{kv(fmt.Sprintf("k%d", i-1), 1, "")}
			}
			return req
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			runs++
			store := fmt.Sprintf("bench-%s-%d", c.name, runs)
			if c.setup != nil {
				c.setup(store)
			}
			b.ResetTimer()
			for i := range b.N {
				if err := s.Put(ctx, "u", c.req(store, i)); err != nil {
					b.Fatalf("request %d: %v", i, err)
				}
			}
		})
	}
}
