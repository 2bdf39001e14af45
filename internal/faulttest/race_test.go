package faulttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/internal/pgtest"
)

// TestRacingUnconditionalWritersOnPostgres runs two servers on one PostgreSQL database
// and has wallets of one user, spread over the servers and both bindings, race over a
// few shared keys of one store: PutObjects of several shared keys in a random order at
// version -1, some with a create of a key of the wallet's own or an unconditional delete
// of it (so that the general statement runs, not only the upsert), DeleteObjects of
// shared keys (so that keys keep being created again), and, from other requests, creates
// of shared keys at version 0, which may conflict. No condition of the other requests
// can fail, so none of them may be answered CONFLICT (which LDK Node, whose writes are
// all at version -1, would not retry): a deadlock or serialization failure in the
// database is retried by the server or answered as retryable. A bystander of another
// user keeps writing meanwhile.
func TestRacingUnconditionalWritersOnPostgres(t *testing.T) {
	db := pgtest.NewDatabase(t)
	servers := []*serverProc{
		startServer(t, "--database-url", db, "--auth", "signature"),
		startServer(t, "--database-url", db, "--auth", "signature"),
	}
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	const (
		store   = "race"
		wallets = 24
		rounds  = 80
		shared  = 8
	)
	ctx := testContext(t, 3*time.Minute)
	by := newBystander(t, servers[1], nil)
	by.start(ctx)

	var (
		mu                                    sync.Mutex
		plain, plainConflicts, plainRetryable int
		creating, creatingConflicts           int
		other                                 []error
	)
	var wg sync.WaitGroup
	for w := range wallets {
		c := newAPI(w, servers[w%len(servers)].url(), key)
		wg.Go(func() {
			rw := conformance.NewRaceWriter(w, shared, 5)
			for range rounds {
				del, req, isCreating := rw.Next(store)
				if del != nil {
					if err := c.DeleteObject(ctx, del); err != nil {
						mu.Lock()
						other = append(other, fmt.Errorf("DeleteObject: %w", err))
						mu.Unlock()
					}
				}
				err := c.PutObjects(ctx, req)
				if err != nil {
					rw.Failed()
				}
				conflict := isCode(err, vssv1.ErrorCode_CONFLICT_EXCEPTION)
				mu.Lock()
				switch {
				case isCreating:
					creating++
					if conflict {
						creatingConflicts++
					}
				default:
					plain++
					if conflict {
						plainConflicts++
					}
				}
				switch {
				case err == nil, conflict:
				case outcomeOf(err) == unknown:
					plainRetryable++
				default:
					other = append(other, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	by.finish(t, servers[1], "racing unconditional writers", 0)
	t.Logf("%d requests without a condition that can fail: %d CONFLICT, %d retryable failures; %d creating shared keys: %d CONFLICT",
		plain, plainConflicts, plainRetryable, creating, creatingConflicts)
	t.Logf("server peak RSS: %.1f MiB and %.1f MiB", float64(servers[0].peakRSS(t))/(1<<20), float64(servers[1].peakRSS(t))/(1<<20))
	if plainConflicts > 0 {
		t.Errorf("%d of %d requests without a condition that can fail were answered CONFLICT", plainConflicts, plain)
	}
	for i, err := range other {
		if i == 5 {
			t.Errorf("... and %d more", len(other)-5)
			break
		}
		t.Errorf("unexpected answer: %v", err)
	}
}
