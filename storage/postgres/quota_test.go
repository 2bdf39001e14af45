package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// usageRow reads the usage row the store keeps for user; ok is false if there is none.
func usageRow(t testing.TB, url, user string) (bytes, keys int64, ok bool) {
	t.Helper()
	err := connect(t, url).QueryRow(context.Background(),
		"SELECT bytes, keys FROM vss_user_usage WHERE user_token = $1", user).Scan(&bytes, &keys)
	if err != nil {
		if strings.Contains(err.Error(), "no rows") {
			return 0, 0, false
		}
		t.Fatalf("read usage: %v", err)
	}
	return bytes, keys, true
}

// actualUsage sums user's rows in vss_db.
func actualUsage(t testing.TB, s *Store, user string) (bytes, keys int64) {
	t.Helper()
	u, err := s.Usage(context.Background(), user)
	if err != nil {
		t.Fatalf("Usage: %v", err)
	}
	if len(u) == 0 {
		return 0, 0
	}
	return u[0].Bytes, u[0].Keys
}

// checkUsageRow fails unless the usage row of user equals the sums over its rows.
func checkUsageRow(t testing.TB, s *Store, url, user string) {
	t.Helper()
	gotB, gotK, ok := usageRow(t, url, user)
	wantB, wantK := actualUsage(t, s, user)
	if !ok || gotB != wantB || gotK != wantK {
		t.Errorf("usage row of %s = (%d bytes, %d keys, present %v), rows hold %d bytes, %d keys", user, gotB, gotK, ok, wantB, wantK)
	}
}

func TestQuotaBytesAndKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	// Key "k1" (2 bytes) + 8-byte values: 10 bytes an entry.
	s := openStore(t, url, WithQuota(storage.Quota{MaxBytes: 35, MaxKeys: 4}))
	val := strings.Repeat("v", 8)

	put(t, s, "u", "a", kv("k1", 0, val), kv("k2", 0, val), kv("k3", 0, val)) // 30 bytes, 3 keys
	checkUsageRow(t, s, url, "u")

	err := s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("k4", 0, val)}})
	var qe *storage.QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, storage.ErrQuotaExceeded) || !qe.Bytes || qe.Limit != 35 {
		t.Fatalf("put over the byte quota: err = %v, want a byte QuotaError with limit 35", err)
	}
	if got := err.Error(); got != "storage quota exceeded: at most 35 bytes per user" {
		t.Errorf("message = %q", got)
	}
	if _, err := s.Get(ctx, "u", "b", "k4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused put wrote k4: %v", err)
	}
	// A refused put that also deletes deletes nothing.
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "a",
		Puts: []storage.KeyValue{kv("k4", 0, val+val)}, Deletes: []storage.KeyValue{kv("k1", -1, "")}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("put + delete over quota: err = %v", err)
	}
	get(t, s, "u", "a", "k1")
	checkUsageRow(t, s, url, "u")

	// Replacing a value by one of the same size changes nothing; smaller values and
	// deletes always pass.
	put(t, s, "u", "a", kv("k1", 1, "12345678"))
	put(t, s, "u", "a", kv("k2", -1, "1")) // 23 bytes
	put(t, s, "u", "b", kv("k4", 0, val))  // 33 bytes, 4 keys
	checkUsageRow(t, s, url, "u")
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("x", 0, "")}}) // 34 bytes, 5 keys
	if !errors.As(err, &qe) || qe.Bytes || qe.Limit != 4 || err.Error() != "key quota exceeded: at most 4 keys per user" {
		t.Fatalf("put over the key quota: err = %v", err)
	}
	// A conflict is reported as a conflict even when the quota would also refuse.
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "b", Puts: []storage.KeyValue{kv("k4", 0, val), kv("y", 0, "")}})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("conflicting put over quota: err = %v, want ErrConflict", err)
	}
	// Another user has a quota of its own.
	put(t, s, "other", "a", kv("k1", 0, val), kv("k2", 0, val), kv("k3", 0, val))
	if err := s.Delete(ctx, "u", "b", "k4", -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "u", "b", "missing", -1); err != nil {
		t.Fatal(err)
	}
	put(t, s, "u", "b", kv("x", 0, "")) // fits again: 24 bytes, 4 keys
	checkUsageRow(t, s, url, "u")
	checkUsageRow(t, s, url, "other")

	// The global version row counts as a key of 14 bytes.
	err = s.Put(ctx, "u", storage.PutRequest{StoreID: "c", Puts: []storage.KeyValue{kv(storage.GlobalVersionKey, 0, "")}})
	if !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("global version over the key quota: err = %v", err)
	}
}

// TestQuotaTurnedOnLater writes with quotas off, then opens the store with a quota: the
// user's usage is counted from the existing rows at the first write, and the limit holds.
// Turning quotas off and on again recounts, so writes made meanwhile are not missed.
func TestQuotaTurnedOnLater(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	plain := openStore(t, url)
	put(t, plain, "u", "s", kv("a", 0, "123456789")) // 10 bytes

	q := storage.Quota{MaxBytes: 25}
	s := openStore(t, url, WithQuota(q))
	put(t, s, "u", "s", kv("b", 0, "123456789")) // 20 bytes
	checkUsageRow(t, s, url, "u")

	off := openStore(t, url, WithQuota(storage.Quota{}))
	if _, _, ok := usageRow(t, url, "u"); ok {
		t.Fatal("a store opened with quotas off kept the usage rows")
	}
	put(t, off, "u", "s", kv("c", 0, "1234")) // 25 bytes, not counted by anyone

	s2 := openStore(t, url, WithQuota(q))
	if err := s2.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("d", 0, "")}}); !errors.Is(err, storage.ErrQuotaExceeded) {
		t.Fatalf("put past the quota after a restart: err = %v", err)
	}
	checkUsageRow(t, s2, url, "u")
}

// TestQuotaConcurrentWriters has many writers of one user race to fill its quota, each
// through its own connection. The quota must never be exceeded, and the usage row must
// end equal to the user's rows.
func TestQuotaConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	const maxBytes, maxKeys = 1000, 60
	s := openStore(t, url, WithQuota(storage.Quota{MaxBytes: maxBytes, MaxKeys: maxKeys}))
	put(t, s, "u", "s", kv("seed", 0, strings.Repeat("x", 100)))

	const workers, perWorker = 16, 20
	var ok, refused, overQuota, peakBytes, peakKeys atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				req := storage.PutRequest{StoreID: fmt.Sprintf("s%d", w%3)}
				switch i % 4 {
				case 0, 1: // a new key of 10..29 bytes
					req.Puts = []storage.KeyValue{kv(fmt.Sprintf("w%02d-%02d", w, i), 0, strings.Repeat("y", 4+(w+i)%20))}
				case 2: // an upsert of a key other workers write too
					req.Puts = []storage.KeyValue{kv(fmt.Sprintf("shared-%d", i%5), -1, strings.Repeat("z", (w*7+i)%40))}
				case 3: // an upsert and a delete of this worker's earlier key
					req.Puts = []storage.KeyValue{kv(fmt.Sprintf("shared-%d", w%5), -1, "")}
					req.Deletes = []storage.KeyValue{kv(fmt.Sprintf("w%02d-%02d", w, i-3), -1, "")}
				}
				err := s.Put(ctx, "u", req)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, storage.ErrQuotaExceeded):
					overQuota.Add(1)
					refused.Add(1)
				case errors.Is(err, storage.ErrConflict): // a delete of a key that was refused
					refused.Add(1)
				default:
					t.Errorf("worker %d: %v", w, err)
					return
				}
				b, k := actualUsage(t, s, "u")
				if b > maxBytes || k > maxKeys {
					t.Errorf("usage reached %d bytes, %d keys; quota is %d bytes, %d keys", b, k, maxBytes, maxKeys)
				}
				for peak, v := range map[*atomic.Int64]int64{&peakBytes: b, &peakKeys: k} {
					for cur := peak.Load(); v > cur && !peak.CompareAndSwap(cur, v); cur = peak.Load() {
					}
				}
			}
		})
	}
	wg.Wait()
	b, k := actualUsage(t, s, "u")
	t.Logf("%d writes applied, %d refused (%d over quota); final usage %d bytes, %d keys; peak %d bytes, %d keys",
		ok.Load(), refused.Load(), overQuota.Load(), b, k, peakBytes.Load(), peakKeys.Load())
	if b > maxBytes || k > maxKeys {
		t.Errorf("final usage %d bytes, %d keys exceeds the quota", b, k)
	}
	if overQuota.Load() == 0 || peakBytes.Load() < maxBytes-40 && peakKeys.Load() < maxKeys {
		t.Errorf("the writers did not press against the quota: the test proves nothing")
	}
	checkUsageRow(t, s, url, "u")
}

// TestQuotaRoundTrips checks that with a quota a Put and a Delete still take one round
// trip (a batch of two statements), and that without one they are single queries (see
// TestRoundTrips).
func TestQuotaRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, c := openCounted(t, WithQuota(storage.Quota{MaxBytes: 1 << 30, MaxKeys: 100000}))
	ops := []struct {
		name string
		op   func() error
	}{
		{"Put 1 item", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", -1, "v")}})
		}},
		{"Put 1000 creates", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Puts: keyValues(1000, 0)})
		}},
		{"Put 1000 updates", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Puts: keyValues(1000, 1)})
		}},
		{"Put 1000 deletes", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Deletes: keyValues(1000, 2)})
		}},
		{"Put conflict", func() error {
			if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", 0, "v")}}); err != storage.ErrConflict {
				return fmt.Errorf("err = %v, want ErrConflict", err)
			}
			return nil
		}},
		{"Put of a new user", func() error {
			return s.Put(ctx, "new", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", -1, "v")}})
		}},
		{"Delete", func() error { return s.Delete(ctx, "u", "one", "k", -1) }},
	}
	// Prepare the statements on the connection.
	_ = s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", -1, "v")}})
	_ = s.Delete(ctx, "u", "one", "none", -1)
	for _, o := range ops {
		c.reset()
		if err := o.op(); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		q, b, p, w := c.load()
		if b != 1 || p != 0 || w != 1 {
			t.Errorf("%s: %d queries, %d batches, %d prepares, %d round trips; want 1 batch and 1 round trip",
				o.name, q, b, p, w)
		}
	}
}

func TestAdminUsageAndDeleteUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	s := openStore(t, url, WithQuota(storage.Quota{MaxKeys: 100}))
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
	if _, _, ok := usageRow(t, url, "alice"); ok {
		t.Error("the usage row of alice survived")
	}
	if u, _ := s.Usage(ctx, "bob"); fmt.Sprint(u) != fmt.Sprint(want[1:]) {
		t.Errorf("Usage(bob) = %v", u)
	}
	put(t, s, "alice", "s1", kv("k", 0, "1"))
	checkUsageRow(t, s, url, "alice")
}
