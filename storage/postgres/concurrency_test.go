package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/govss/vss/storage"
)

// TestRaceConditionalWrites has 32 goroutines each read a key and write it back at the
// version they read, for a bounded number of attempts. Every version must be won by
// exactly one write, and the final version must count the wins.
func TestRaceConditionalWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	put(t, s, "u", "s", kv("k", 0, "start")) // version 1

	const workers, attempts = 32, 10
	var (
		mu   sync.Mutex
		wins = map[int64]string{} // version replaced -> winner
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for a := range attempts {
				cur, err := s.Get(ctx, "u", "s", "k")
				if err != nil {
					t.Errorf("worker %d: Get: %v", w, err)
					return
				}
				me := fmt.Sprintf("%d/%d", w, a)
				err = s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
					kv("k", cur.Version, me), kv(storage.GlobalVersionKey, -1, ""),
				}})
				switch {
				case err == nil:
					mu.Lock()
					if prev, ok := wins[cur.Version]; ok {
						t.Errorf("version %d won twice: by %s and %s", cur.Version, prev, me)
					}
					wins[cur.Version] = me
					mu.Unlock()
				case errors.Is(err, storage.ErrConflict):
				default:
					t.Errorf("worker %d: Put: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()

	final := get(t, s, "u", "s", "k")
	if int64(len(wins)) != final.Version-1 {
		t.Fatalf("%d wins but final version %d", len(wins), final.Version)
	}
	for v := int64(1); v < final.Version; v++ {
		if _, ok := wins[v]; !ok {
			t.Errorf("version %d was never won", v)
		}
	}
	if want := wins[final.Version-1]; string(final.Value) != want {
		t.Errorf("final value %q, want the last winner %q", final.Value, want)
	}
	t.Logf("%d wins out of %d attempts", len(wins), workers*attempts)
}

// TestRaceCreates has 32 goroutines create the same key at once: one wins, the others
// see a conflict (through unique_violation when their snapshot missed the winner).
func TestRaceCreates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for round := range 5 {
		key := fmt.Sprintf("k%d", round)
		results := race(32, func(i int) error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{
				kv(key, 0, fmt.Sprint(i)), kv(fmt.Sprintf("%s-own-%d", key, i), 0, ""),
			}})
		})
		won := 0
		for i, err := range results {
			switch {
			case err == nil:
				won++
				// The winner's other key exists; the losers' do not.
				get(t, s, "u", "s", fmt.Sprintf("%s-own-%d", key, i))
			case errors.Is(err, storage.ErrConflict):
				if _, err := s.Get(ctx, "u", "s", fmt.Sprintf("%s-own-%d", key, i)); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("a losing create wrote its other key: %v", err)
				}
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d creates won", round, won)
		}
	}
}

// TestRaceUpserts has 32 goroutines write the same new key unconditionally: all succeed.
func TestRaceUpserts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for i, err := range race(32, func(i int) error {
		return s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{kv("k", -1, fmt.Sprint(i))}})
	}) {
		if err != nil {
			t.Errorf("upsert %d: %v", i, err)
		}
	}
	if got := get(t, s, "u", "s", "k"); got.Version != 1 {
		t.Errorf("k = %+v, want version 1", got)
	}
}

// TestRaceOverlappingPuts has writers update the same ten keys, each listing them in
// its own random order, and delete and re-create others: row locks are taken in key
// order, so none of them deadlocks, and every write succeeds.
func TestRaceOverlappingPuts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
		put(t, s, "u", "s", kv(keys[i], 0, ""))
	}
	for i, err := range race(16, func(int) error {
		for range 10 {
			order := slices.Clone(keys)
			rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			items := make([]storage.KeyValue, len(order))
			for j, k := range order {
				items[j] = kv(k, -1, "x")
			}
			if err := s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: items}); err != nil {
				return err
			}
		}
		return nil
	}) {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
}

// race runs f(0) … f(n-1) at the same moment and returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}
