package conformance_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
)

// TestRacingWritersWithoutConditionsNeverConflict races writers over a few shared keys of
// one store, through the VSS HTTP API and Connect, on every store. Each writer sends
// multi-key PutObjects naming the shared keys in a random order: only unconditional
// writes (version -1), or unconditional writes together with a create of a key nobody
// else uses, or with an unconditional delete of such a key (which exists), and standalone
// DeleteObjects of shared keys, so that keys keep disappearing and being created again.
// Other writers create shared keys at version 0 among unconditional writes, which may
// legitimately conflict. No condition of the first kind of request can fail, so none of
// them may be answered CONFLICT: a deadlock or a serialization failure inside the
// database is the server's business, to retry or to report as retryable (INTERNAL, 500
// or unavailable), never a conflict, which clients do not retry.
func TestRacingWritersWithoutConditionsNeverConflict(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			store := st.open(t)
			base := serve(t, store, 0)
			bindings := conformance.Bindings(conformance.TestUser)
			clients := []conformance.Client{bindings[0].New(base), bindings[1].New(base)}
			c := raceUnconditional(t, clients)
			if gs, ok := groupCommitStats(store); ok {
				t.Logf("%s: group commit: %d writes in %d transactions, %d of them shared one, largest %d",
					st.name, gs.Writes, gs.Batches, gs.Shared, gs.Largest)
			}
			t.Logf("%s: %d requests without conditions (%d CONFLICT, %d retryable failures), %d with creates of shared keys (%d CONFLICT)",
				st.name, c.plain, c.plainConflicts, c.plainRetryable, c.creating, c.creatingConflicts)
			if c.plainConflicts > 0 {
				t.Errorf("%d of %d requests without a condition that can fail were answered CONFLICT", c.plainConflicts, c.plain)
			}
		})
	}
}

type raceCounts struct {
	plain, plainConflicts, plainRetryable int
	creating, creatingConflicts           int
}

// raceUnconditional runs the race of TestRacingWritersWithoutConditionsNeverConflict with
// clients and returns what the server answered. Unexpected answers fail t.
func raceUnconditional(t *testing.T, clients []conformance.Client) raceCounts {
	t.Helper()
	const (
		writers = 24
		rounds  = 100
		shared  = 8
	)
	user, store := "racer", "race-store"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var (
		mu sync.Mutex
		c  raceCounts
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rw := conformance.NewRaceWriter(w, shared, 11)
			cl := clients[w%len(clients)]
			for range rounds {
				del, req, creating := rw.Next(store)
				if del != nil {
					if _, err := cl.DeleteObject(ctx, user, del); err != nil {
						t.Errorf("DeleteObject: %v", err)
						return
					}
				}
				_, err := cl.PutObjects(ctx, user, req)
				var f *conformance.Failure
				if err != nil && !errors.As(err, &f) {
					t.Errorf("PutObjects: %v", err)
					return
				}
				mu.Lock()
				switch {
				case creating:
					c.creating++
					if f != nil && f.Code == vssv1.ErrorCode_CONFLICT_EXCEPTION {
						c.creatingConflicts++
						f = nil
					}
				default:
					c.plain++
					if f != nil && f.Code == vssv1.ErrorCode_CONFLICT_EXCEPTION {
						c.plainConflicts++
						f = nil
					}
				}
				if f != nil && f.Code == vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION {
					c.plainRetryable++
					f = nil
				}
				mu.Unlock()
				if f != nil {
					t.Errorf("PutObjects %v: %v", req, f)
					return
				}
				if err != nil {
					rw.Failed()
				}
			}
		})
	}
	wg.Wait()

	// Every write of a shared key was unconditional or a create: each that exists is at
	// version 1.
	for i := range shared {
		resp, err := clients[0].GetObject(ctx, user, &vssv1.GetObjectRequest{StoreId: store, Key: conformance.SharedKey(i)})
		var f *conformance.Failure
		switch {
		case errors.As(err, &f) && f.Code == vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION:
		case err != nil:
			t.Errorf("GetObject(%s): %v", conformance.SharedKey(i), err)
		case resp.GetValue().GetVersion() != 1:
			t.Errorf("%s is at version %d, want 1", conformance.SharedKey(i), resp.GetValue().GetVersion())
		}
	}
	return c
}
