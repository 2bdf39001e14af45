package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

// openQuota opens a file Store at path with opts and closes it when the test ends.
func openQuota(t *testing.T, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(t *testing.T, s *Store, user, storeID string, items ...storage.KeyValue) {
	t.Helper()
	mustPut(t, s, user, storeID, items, nil)
}

// checkUsageRow fails unless the usage row of user equals the sums over its entries.
func checkUsageRow(t *testing.T, s *Store, user string) {
	t.Helper()
	row, err := sqlitedb.New(s.write).GetUsage(t.Context(), user)
	if err != nil {
		t.Fatalf("usage row of %s: %v", user, err)
	}
	u, err := s.Usage(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	var want storage.Usage
	if len(u) > 0 {
		want = u[0]
	}
	if row.Bytes != want.Bytes || row.Keys != want.Keys {
		t.Errorf("usage row of %s = %d bytes, %d keys; entries hold %d bytes, %d keys", user, row.Bytes, row.Keys, want.Bytes, want.Keys)
	}
}

func TestQuotaBytesAndKeys(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openQuota(t, filepath.Join(t.TempDir(), "vss.db"), WithQuota(storage.Quota{MaxBytes: 35, MaxKeys: 4}))
	val := strings.Repeat("v", 8)

	put(t, s, "u", "a", kv("k1", 0, val), kv("k2", 0, val), kv("k3", 0, val)) // 30 bytes, 3 keys
	checkUsageRow(t, s, "u")
	err := s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("k4", 0, val)}})
	var qe *storage.QuotaError
	if !errors.As(err, &qe) || !qe.Bytes || qe.Limit != 35 || err.Error() != "storage quota exceeded: at most 35 bytes per user" {
		t.Fatalf("put over the byte quota: err = %v", err)
	}
	wantMissing(t, s, "u", "b", "k4")
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "a",
		Puts: []storage.KeyValue{kv("k4", 0, val+val)}, Deletes: []storage.KeyValue{kv("k1", -1, "")}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("put + delete over quota: err = %v", err)
	}
	wantEntry(t, s, "u", "a", "k1", 1, []byte(val))
	checkUsageRow(t, s, "u")

	put(t, s, "u", "a", kv("k1", 1, "12345678"))
	put(t, s, "u", "a", kv("k2", -1, "1")) // 23 bytes
	put(t, s, "u", "b", kv("k4", 0, val))  // 33 bytes, 4 keys
	checkUsageRow(t, s, "u")
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("x", 0, "")}})
	if !errors.As(err, &qe) || qe.Bytes || qe.Limit != 4 || err.Error() != "key quota exceeded: at most 4 keys per user" {
		t.Fatalf("put over the key quota: err = %v", err)
	}
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("k4", 0, val), kv("y", 0, "")}})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("conflicting put over quota: err = %v, want ErrConflict", err)
	}
	put(t, s, "other", "a", kv("k1", 0, val), kv("k2", 0, val), kv("k3", 0, val))
	if err := s.Delete(ctx, "u", "b", "k4", -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "u", "b", "missing", -1); err != nil {
		t.Fatal(err)
	}
	put(t, s, "u", "b", kv("x", 0, ""))
	checkUsageRow(t, s, "u")
	checkUsageRow(t, s, "other")
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "c", Puts: []storage.KeyValue{kv(storage.GlobalVersionKey, 0, "")}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("global version over the key quota: err = %v", err)
	}
}

func TestQuotaTurnedOnLater(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vss.db")
	plain := openQuota(t, path)
	put(t, plain, "u", "s", kv("a", 0, "123456789"))
	plain.Close()

	q := storage.Quota{MaxBytes: 25}
	s := openQuota(t, path, WithQuota(q))
	put(t, s, "u", "s", kv("b", 0, "123456789")) // 20 bytes
	checkUsageRow(t, s, "u")
	s.Close()

	off := openQuota(t, path, WithQuota(storage.Quota{}))
	put(t, off, "u", "s", kv("c", 0, "1234")) // 25 bytes
	off.Close()

	s2 := openQuota(t, path, WithQuota(q))
	if err := s2.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("d", 0, "")}}); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("put past the quota after a restart: err = %v", err)
	}
	put(t, s2, "u", "s", kv("a", 1, "1")) // shrinking writes pass
	checkUsageRow(t, s2, "u")
}

// TestQuotaConcurrentWriters has many writers of one user race to fill its quota on
// both modes of the store; the quota must hold and the usage row must stay exact.
func TestQuotaConcurrentWriters(t *testing.T) {
	t.Parallel()
	const maxBytes, maxKeys = 1000, 60
	q := WithQuota(storage.Quota{MaxBytes: maxBytes, MaxKeys: maxKeys})
	for name, open := range map[string]func() (*Store, error){
		"file":   func() (*Store, error) { return Open(t.Context(), filepath.Join(t.TempDir(), "vss.db"), q) },
		"memory": func() (*Store, error) { return OpenMemory(t.Context(), q) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := open()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var refused atomic.Int64
			var wg sync.WaitGroup
			for w := range 16 {
				wg.Go(func() {
					for i := range 20 {
						req := storage.PutRequest{StoreID: fmt.Sprintf("s%d", w%3)}
						if i%3 == 2 {
							req.Puts = []storage.KeyValue{kv(fmt.Sprintf("shared-%d", i%5), -1, strings.Repeat("z", (w*7+i)%40))}
							req.Deletes = []storage.KeyValue{kv(fmt.Sprintf("w%02d-%02d", w, i-2), -1, "")}
						} else {
							req.Puts = []storage.KeyValue{kv(fmt.Sprintf("w%02d-%02d", w, i), 0, strings.Repeat("y", 4+(w+i)%20))}
						}
						switch err := s.Put(ctx, "u", req); {
						case err == nil:
						case errors.Is(err, storage.ErrQuotaExceeded), errors.Is(err, storage.ErrConflict):
							refused.Add(1)
						default:
							t.Errorf("worker %d: %v", w, err)
							return
						}
					}
				})
			}
			wg.Wait()
			u, err := s.Usage(ctx, "u")
			if err != nil {
				t.Fatal(err)
			}
			if u[0].Bytes > maxBytes || u[0].Keys > maxKeys {
				t.Errorf("final usage %+v exceeds the quota", u[0])
			}
			if refused.Load() == 0 {
				t.Error("no write was refused: the test proves nothing")
			}
			checkUsageRow(t, s, "u")
		})
	}
}

func TestAdminUsageAndDeleteUser(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openQuota(t, filepath.Join(t.TempDir(), "vss.db"), WithQuota(storage.Quota{MaxKeys: 100}))
	put(t, s, "alice", "s1", kv("k", 0, "1234"), kv(storage.GlobalVersionKey, 0, ""))
	put(t, s, "alice", "s2", kv("kk", 0, ""))
	put(t, s, "bob", "s1", kv("k", 0, "12"))
	all, err := s.Usage(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.Usage{{User: "alice", Bytes: 5 + 14 + 2, Keys: 3, Stores: 2}, {User: "bob", Bytes: 3, Keys: 1, Stores: 1}}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Fatalf("Usage = %v, want %v", all, want)
	}
	n, err := s.DeleteUser(ctx, "alice")
	if err != nil || n != 3 {
		t.Fatalf("DeleteUser = %d, %v; want 3 entries", n, err)
	}
	if u, _ := s.Usage(ctx, "alice"); len(u) != 0 {
		t.Errorf("alice still stores %v", u)
	}
	if _, err := sqlitedb.New(s.write).GetUsage(ctx, "alice"); err == nil {
		t.Error("the usage row of alice survived")
	}
	put(t, s, "alice", "s1", kv("k", 0, "1"))
	checkUsageRow(t, s, "alice")
}
