package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// TestInterleavings runs each store call while another transaction holds an
// uncommitted write to the same key, waits until the call is blocked on it, then ends
// that transaction. This pins down the READ COMMITTED reasoning of the PutObjects
// query: the call's snapshot predates the other write, and it must still act on the
// newest committed row.
func TestInterleavings(t *testing.T) {
	t.Parallel()
	const (
		insertK = `INSERT INTO vss_db (user_token, store_id, key, value, version, created_at)
		           VALUES ('u', 's', 'k', 'theirs', 1, now())`
		updateK = `UPDATE vss_db SET version = 2, value = 'theirs' WHERE user_token = 'u' AND store_id = 's' AND key = 'k'`
		deleteK = `DELETE FROM vss_db WHERE user_token = 'u' AND store_id = 's' AND key = 'k'`
	)
	putReq := func(puts []storage.KeyValue, deletes ...storage.KeyValue) func(*Store) error {
		return func(s *Store) error {
			return s.Put(context.Background(), "u", storage.PutRequest{StoreID: "s", Puts: puts, Deletes: deletes})
		}
	}
	for _, c := range []struct {
		name     string
		existing bool   // k exists at version 1 beforehand
		other    string // the other transaction's write
		rollback bool   // the other transaction rolls back instead of committing
		call     func(*Store) error
		wantErr  error
		want     map[string]string // key -> "value@version", "" for absent
	}{
		{
			name: "update at the version the other write replaced conflicts", existing: true, other: updateK,
			call:    putReq([]storage.KeyValue{kv("k", 1, "mine"), kv("n", 0, "mine")}),
			wantErr: storage.ErrConflict,
			want:    map[string]string{"k": "theirs@2", "n": ""},
		},
		{
			name: "update at the version the other write made succeeds", existing: true, other: updateK,
			call: putReq([]storage.KeyValue{kv("k", 2, "mine"), kv("n", 0, "mine")}),
			want: map[string]string{"k": "mine@3", "n": "mine@1"},
		},
		{
			name: "create of a key created concurrently conflicts", other: insertK,
			call:    putReq([]storage.KeyValue{kv("k", 0, "mine"), kv("n", 0, "mine")}),
			wantErr: storage.ErrConflict,
			want:    map[string]string{"k": "theirs@1", "n": ""},
		},
		{
			name: "create of a key whose concurrent create rolled back succeeds", other: insertK, rollback: true,
			call: putReq([]storage.KeyValue{kv("k", 0, "mine")}),
			want: map[string]string{"k": "mine@1"},
		},
		{
			name: "unconditional write overwrites a concurrent create", other: insertK,
			call: putReq([]storage.KeyValue{kv("k", -1, "mine"), kv("n", 0, "mine")}),
			want: map[string]string{"k": "mine@1", "n": "mine@1"},
		},
		{
			name: "unconditional write overwrites a concurrent update", existing: true, other: updateK,
			call: putReq([]storage.KeyValue{kv("k", -1, "mine")}),
			want: map[string]string{"k": "mine@1"},
		},
		{
			name: "delete item checks the version of the concurrent update", existing: true, other: updateK,
			call: putReq(nil, kv("k", 2, "")),
			want: map[string]string{"k": ""},
		},
		{
			name: "delete item of a key deleted concurrently conflicts", existing: true, other: deleteK,
			call:    putReq([]storage.KeyValue{kv("n", 0, "mine")}, kv("k", 1, "")),
			wantErr: storage.ErrConflict,
			want:    map[string]string{"k": "", "n": ""},
		},
		{
			name: "update of a key deleted concurrently conflicts", existing: true, other: deleteK,
			call:    putReq([]storage.KeyValue{kv("k", 1, "mine")}),
			wantErr: storage.ErrConflict,
			want:    map[string]string{"k": ""},
		},
		{
			name: "standalone delete rechecks the version of the concurrent update", existing: true, other: updateK,
			call: func(s *Store) error { return s.Delete(context.Background(), "u", "s", "k", 1) },
			want: map[string]string{"k": "theirs@2"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := pgtest.NewDatabase(t)
			s := openStore(t, url)
			if c.existing {
				put(t, s, "u", "s", kv("k", 0, "before"))
			}

			tx, err := connect(t, url).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, c.other); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.call(s) }()
			waitForLockWait(t, url, done)
			if c.rollback {
				err = tx.Rollback(ctx)
			} else {
				err = tx.Commit(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}

			if err := <-done; !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			for key, want := range c.want {
				got, err := s.Get(ctx, "u", "s", key)
				var desc string
				if err == nil {
					desc = fmt.Sprintf("%s@%d", got.Value, got.Version)
				} else if !errors.Is(err, storage.ErrNotFound) {
					t.Fatal(err)
				}
				if desc != want {
					t.Errorf("%s = %q, want %q", key, desc, want)
				}
			}
		})
	}
}

// waitForLockWait returns once a session of the database at url waits for a lock, and
// fails t if the call sending done finished first or nothing waits within 10 s.
func waitForLockWait(t *testing.T, url string, done <-chan error) {
	t.Helper()
	conn := connect(t, url)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("the call finished without waiting for the other transaction: %v", err)
		default:
		}
		var waiting int
		if err := conn.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the call never waited for the other transaction")
}
