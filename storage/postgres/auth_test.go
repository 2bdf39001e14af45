package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// countChallenges returns how many challenges the database at url keeps, and how many
// of them have expired by the database's clock.
func countChallenges(t *testing.T, url string) (all, expired int) {
	t.Helper()
	err := connect(t, url).QueryRow(context.Background(),
		"SELECT count(*), count(*) FILTER (WHERE expires_at < now()) FROM vss_auth_challenges").Scan(&all, &expired)
	if err != nil {
		t.Fatal(err)
	}
	return all, expired
}

func TestUseChallengeReplay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	s, other := openStore(t, url), openStore(t, url)
	k1 := bytes.Repeat([]byte{1}, 32)
	exp := time.Now().Add(time.Minute)

	if err := s.UseChallenge(ctx, k1, exp); err != nil {
		t.Fatalf("first use: %v", err)
	}
	for name, st := range map[string]*Store{"same store": s, "other store": other} {
		if err := st.UseChallenge(ctx, k1, exp); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("replay on the %s: err = %v, want ErrConflict", name, err)
		}
	}
	if err := other.UseChallenge(ctx, bytes.Repeat([]byte{2}, 32), exp); err != nil {
		t.Errorf("another challenge: %v", err)
	}
	if err := s.UseChallenge(ctx, nil, exp); err == nil || errors.Is(err, storage.ErrConflict) {
		t.Errorf("empty challenge: err = %v, want an internal error", err)
	}
}

// TestUseChallengeConcurrent answers each challenge from many goroutines over several
// Stores at once: exactly one of them may succeed.
func TestUseChallengeConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	stores := []*Store{openStore(t, url), openStore(t, url), openStore(t, url)}
	const rounds, perStore = 10, 4
	for round := range rounds {
		k1 := make([]byte, 32)
		_, _ = rand.Read(k1)
		errs := make([]error, len(stores)*perStore)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				errs[i] = stores[i%len(stores)].UseChallenge(context.Background(), k1, time.Now().Add(time.Minute))
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of %d concurrent uses succeeded, want 1", round, won, len(errs))
		}
	}
}

func TestUseChallengeDeletesExpired(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	s := openStore(t, url)

	// 250 challenges that expired an hour ago, and one that expired too but is about to
	// be replayed.
	execSQL(t, url, `INSERT INTO vss_auth_challenges (k1, expires_at)
		SELECT decode(lpad(to_hex(i), 64, '0'), 'hex'), now() - interval '1 hour'
		FROM generate_series(1, 250) i`)
	stale := bytes.Repeat([]byte{0xee}, 32)
	if err := s.UseChallenge(ctx, stale, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// That use deleted challengeCleanupLimit of the others.
	if all, expired := countChallenges(t, url); all != 251-challengeCleanupLimit || expired != all {
		t.Fatalf("after one use: %d challenges, %d expired; want %d, all expired", all, expired, 251-challengeCleanupLimit)
	}

	// A replay is refused as long as the row exists, expired or not: the store never
	// deletes the challenge it is asked about.
	if err := s.UseChallenge(ctx, stale, time.Now().Add(-time.Hour)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("replay of an expired challenge still stored: err = %v, want ErrConflict", err)
	}

	live := time.Now().Add(time.Hour)
	for i := range 3 {
		if err := s.UseChallenge(ctx, bytes.Repeat([]byte{byte(i + 1)}, 33), live); err != nil {
			t.Fatal(err)
		}
	}
	// Every expired row is gone; the three live ones stay.
	if all, expired := countChallenges(t, url); all != 3 || expired != 0 {
		t.Fatalf("after more uses: %d challenges, %d expired; want 3 live ones", all, expired)
	}
}

func TestSecretConcurrent(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	stores := []*Store{openStore(t, url), openStore(t, url), openStore(t, url)}
	const perStore = 6
	got := make([][]byte, len(stores)*perStore)
	generated := make([][]byte, len(got))
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			got[i], errs[i] = stores[i%len(stores)].Secret(context.Background(), "signing-key", func() ([]byte, error) {
				b := make([]byte, 32)
				_, _ = rand.Read(b)
				generated[i] = b
				return b, nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Secret %d: %v", i, err)
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("Secret %d = %x, Secret 0 = %x: racing calls disagree", i, got[i], got[0])
		}
	}
	first := false
	for _, g := range generated {
		first = first || bytes.Equal(g, got[0])
	}
	if !first {
		t.Fatalf("Secret = %x, which no generate call returned", got[0])
	}

	// A new Store (a restart) reads the same secret and does not keep what it
	// generates; another name has its own secret.
	ctx := t.Context()
	again, err := openStore(t, url).Secret(ctx, "signing-key", func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("Secret after a restart = %x, %v; want %x", again, err, got[0])
	}
	mac, err := stores[0].Secret(ctx, "mac-key", func() ([]byte, error) { return []byte("mac"), nil })
	if err != nil || string(mac) != "mac" {
		t.Fatalf("Secret of another name = %q, %v; want \"mac\"", mac, err)
	}
	boom := errors.New("boom")
	if _, err := stores[0].Secret(ctx, "broken", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("Secret with a failing generate: err = %v, want it passed through", err)
	}
}

// TestAuthTablesLeaveReferenceSchema checks that the issuer's migration adds its own
// tables and leaves vss_db exactly as the reference server lays it out.
func TestAuthTablesLeaveReferenceSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	openStore(t, url)
	checkSchema(t, url)
	var n int
	if err := connect(t, url).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_tables WHERE tablename IN ('vss_auth_challenges', 'vss_auth_secrets')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("found %d of the 2 LNURL-auth tables", n)
	}
}
