package sqlite

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/govss/vss/storage"
)

// recorder is an ExportVisitor that keeps what it is given.
type recorder struct {
	stores  []storage.ExportStore
	entries [][]storage.KeyValue
	open    bool
}

func (r *recorder) BeginStore(s storage.ExportStore) error {
	if r.open {
		return fmt.Errorf("store %q begins inside another", s.ID)
	}
	r.stores, r.entries, r.open = append(r.stores, s), append(r.entries, nil), true
	return nil
}

func (r *recorder) Entry(kv storage.KeyValue) error {
	if !r.open {
		return fmt.Errorf("entry %q outside a store", kv.Key)
	}
	r.entries[len(r.entries)-1] = append(r.entries[len(r.entries)-1], kv)
	return nil
}

func (r *recorder) EndStore() error {
	if !r.open {
		return fmt.Errorf("store end outside a store")
	}
	r.open = false
	return nil
}

// TestExportUser exports a user's stores: in store id order, each with its global
// version (or none), its entries oldest first across several pages, with versions and
// values, and nothing of other users.
func TestExportUser(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		put := func(user, store string, kvs ...storage.KeyValue) {
			t.Helper()
			if err := s.Put(ctx, user, storage.PutRequest{StoreID: store, Puts: kvs}); err != nil {
				t.Fatal(err)
			}
		}
		var want []string
		for i := range 2*exportPageSize + 3 {
			key := fmt.Sprintf("k%03d", i)
			put("alice", "wallet", storage.KeyValue{Key: key, Value: []byte(key)})
			want = append(want, key)
		}
		// An update keeps its place; a delete and re-create moves the key to the end.
		put("alice", "wallet", storage.KeyValue{Key: "k001", Version: 1, Value: []byte("updated")})
		if err := s.Put(ctx, "alice", storage.PutRequest{StoreID: "wallet", Deletes: []storage.KeyValue{{Key: "k000", Version: -1}}}); err != nil {
			t.Fatal(err)
		}
		put("alice", "wallet", storage.KeyValue{Key: "k000", Value: []byte("again")}, storage.KeyValue{Key: storage.GlobalVersionKey, Version: 0})
		want = append(want[1:], "k000")
		put("alice", "", storage.KeyValue{Key: "only", Value: []byte{0, 0xff}})
		put("alice", "gv-only", storage.KeyValue{Key: storage.GlobalVersionKey, Version: 0})
		put("bob", "wallet", storage.KeyValue{Key: "secret"})

		var r recorder
		if err := s.ExportUser(ctx, "alice", &r); err != nil {
			t.Fatal(err)
		}
		wantStores := []storage.ExportStore{{ID: ""}, {ID: "gv-only", GlobalVersion: 1, HasGlobalVersion: true}, {ID: "wallet", GlobalVersion: 1, HasGlobalVersion: true}}
		if !slices.Equal(r.stores, wantStores) || r.open {
			t.Fatalf("stores %+v, want %+v", r.stores, wantStores)
		}
		if len(r.entries[0]) != 1 || string(r.entries[0][0].Value) != "\x00\xff" || len(r.entries[1]) != 0 {
			t.Errorf("stores '' and gv-only: %+v", r.entries[:2])
		}
		var keys []string
		for _, kv := range r.entries[2] {
			keys = append(keys, kv.Key)
			switch kv.Key {
			case "k001":
				if kv.Version != 2 || string(kv.Value) != "updated" {
					t.Errorf("k001: version %d value %q", kv.Version, kv.Value)
				}
			case "k000":
				if kv.Version != 1 || string(kv.Value) != "again" {
					t.Errorf("k000: version %d value %q", kv.Version, kv.Value)
				}
			}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}

		var none recorder
		if err := s.ExportUser(ctx, "carol", &none); err != nil || len(none.stores) != 0 {
			t.Errorf("a user without data: %v, %+v", err, none.stores)
		}
	})
}
