package sqlite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/govss/vss/storage"
)

// countChallenges returns how many challenges s keeps, and how many of them expired.
func countChallenges(t *testing.T, s *Store) (all, expired int) {
	t.Helper()
	err := s.write.QueryRowContext(t.Context(),
		"SELECT count(*), count(*) FILTER (WHERE expires_at < ?) FROM vss_auth_challenges",
		time.Now().UnixMilli()).Scan(&all, &expired)
	if err != nil {
		t.Fatal(err)
	}
	return all, expired
}

func TestUseChallengeReplay(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		k1 := bytes.Repeat([]byte{1}, 32)
		exp := time.Now().Add(time.Minute)
		if err := s.UseChallenge(ctx, k1, exp); err != nil {
			t.Fatalf("first use: %v", err)
		}
		if err := s.UseChallenge(ctx, k1, exp); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("replay: err = %v, want ErrConflict", err)
		}
		if err := s.UseChallenge(ctx, bytes.Repeat([]byte{2}, 32), exp); err != nil {
			t.Fatalf("another challenge: %v", err)
		}
		if err := s.UseChallenge(ctx, nil, exp); err == nil || errors.Is(err, storage.ErrConflict) {
			t.Fatalf("empty challenge: err = %v, want an internal error", err)
		}
	})
}

func TestUseChallengeDeletesExpired(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		past := time.Now().Add(-time.Hour)
		for i := range 250 {
			k1 := make([]byte, 32)
			k1[0], k1[1] = byte(i>>8), byte(i)
			if _, err := s.write.ExecContext(ctx, "INSERT INTO vss_auth_challenges (k1, expires_at) VALUES (?, ?)",
				k1, past.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		stale := bytes.Repeat([]byte{0xee}, 32)
		if err := s.UseChallenge(ctx, stale, past); err != nil {
			t.Fatal(err)
		}
		if all, expired := countChallenges(t, s); all != 251-challengeCleanupLimit || expired != all {
			t.Fatalf("after one use: %d challenges, %d expired; want %d, all expired", all, expired, 251-challengeCleanupLimit)
		}
		// The store never deletes the challenge it is asked about, so a replay is
		// refused as long as the row exists, expired or not.
		if err := s.UseChallenge(ctx, stale, past); !errors.Is(err, storage.ErrConflict) {
			t.Fatalf("replay of an expired challenge still stored: err = %v, want ErrConflict", err)
		}
		for i := range 3 {
			if err := s.UseChallenge(ctx, bytes.Repeat([]byte{byte(i + 1)}, 33), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if all, expired := countChallenges(t, s); all != 3 || expired != 0 {
			t.Fatalf("after more uses: %d challenges, %d expired; want 3 live ones", all, expired)
		}
	})
}

// TestAuthStoreSharedFile runs several Stores on one file, as several server processes
// would: each challenge is accepted once among them, and racing Secret calls all get
// the first stored secret, which a reopened Store reads back.
func TestAuthStoreSharedFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	stores := []*Store{openPath(t, path), openPath(t, path), openPath(t, path)}
	const perStore = 6
	n := len(stores) * perStore

	for round := range 5 {
		k1 := make([]byte, 32)
		_, _ = rand.Read(k1)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				errs[i] = stores[i%len(stores)].UseChallenge(t.Context(), k1, time.Now().Add(time.Minute))
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
			t.Fatalf("round %d: %d of %d concurrent uses succeeded, want 1", round, won, n)
		}
	}

	got := make([][]byte, n)
	generated := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			got[i], errs[i] = stores[i%len(stores)].Secret(t.Context(), "signing-key", func() ([]byte, error) {
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

	for _, s := range stores {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	again, err := openPath(t, path).Secret(t.Context(), "signing-key", func() ([]byte, error) { return []byte("other"), nil })
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("Secret after reopening = %x, %v; want %x", again, err, got[0])
	}
}

func TestSecret(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		a, err := s.Secret(ctx, "a", func() ([]byte, error) { return []byte("first"), nil })
		if err != nil || string(a) != "first" {
			t.Fatalf("Secret(a) = %q, %v; want \"first\"", a, err)
		}
		a, err = s.Secret(ctx, "a", func() ([]byte, error) { return []byte("second"), nil })
		if err != nil || string(a) != "first" {
			t.Fatalf("Secret(a) again = %q, %v; want the stored \"first\"", a, err)
		}
		b, err := s.Secret(ctx, "b", func() ([]byte, error) { return []byte("other"), nil })
		if err != nil || string(b) != "other" {
			t.Fatalf("Secret(b) = %q, %v; want \"other\"", b, err)
		}
		boom := errors.New("boom")
		if _, err := s.Secret(ctx, "c", func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("Secret with a failing generate: err = %v, want it passed through", err)
		}
		if _, err := s.Secret(ctx, "c", func() ([]byte, error) { return nil, nil }); err == nil {
			t.Fatal("Secret with an empty secret succeeded")
		}
	})
}
