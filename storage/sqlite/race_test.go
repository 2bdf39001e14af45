package sqlite

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/govss/vss/storage"
)

// TestConditionalWriteRace runs many clients that each read a key and try to write the
// next version, as wallets do. Optimistic concurrency must let exactly one of them win
// each version: no version is won twice (a lost update) and none is skipped.
func TestConditionalWriteRace(t *testing.T) {
	t.Parallel()
	const (
		workers  = 32
		attempts = 20
	)
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		mustPut(t, s, user, storeID, []storage.KeyValue{kv("k", 0, "initial")}, nil)

		var (
			mu   sync.Mutex
			wins = map[int64][]int{} // version written -> workers that wrote it
		)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for range attempts {
					cur, err := s.Get(ctx, user, storeID, "k")
					if err != nil {
						errs <- fmt.Errorf("worker %d: Get: %w", w, err)
						return
					}
					next := cur.Version + 1
					err = s.Put(ctx, user, storage.PutRequest{StoreID: storeID, Puts: []storage.KeyValue{
						{Key: "k", Version: cur.Version, Value: fmt.Appendf(nil, "%d by %d", next, w)},
					}})
					switch {
					case err == nil:
						mu.Lock()
						wins[next] = append(wins[next], w)
						mu.Unlock()
					case !errors.Is(err, storage.ErrConflict):
						errs <- fmt.Errorf("worker %d: Put: %w", w, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}

		final, err := s.Get(ctx, user, storeID, "k")
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(1 + len(wins)); final.Version != want {
			t.Fatalf("final version %d, want %d (1 + %d successful writes)", final.Version, want, len(wins))
		}
		for v := int64(2); v <= final.Version; v++ {
			if len(wins[v]) != 1 {
				t.Fatalf("version %d won by workers %v, want exactly one", v, wins[v])
			}
		}
		if want := fmt.Sprintf("%d by %d", final.Version, wins[final.Version][0]); string(final.Value) != want {
			t.Fatalf("final value %q, want %q", final.Value, want)
		}
		t.Logf("%d workers × %d attempts: %d versions won", workers, attempts, len(wins))
	})
}
