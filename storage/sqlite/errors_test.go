package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/govss/vss/storage"
)

// TestInterpretError feeds interpretError real errors of the driver and database/sql.
func TestInterpretError(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "raw.db")
	// openRaw opens the file without the store's settings; busy_timeout 0 makes a held
	// lock fail at once.
	openRaw := func() *sql.DB {
		db, err := sql.Open("sqlite", fileDSN(path, url.Values{"_busy_timeout": {"0"}, "_journal_mode": {"WAL"}}))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := openRaw()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE, n INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES ('a', 'x', 1)"); err != nil {
		t.Fatal(err)
	}
	_, primaryKey := db.ExecContext(ctx, "INSERT INTO t VALUES ('a', 'y', 1)")
	_, unique := db.ExecContext(ctx, "INSERT INTO t VALUES ('b', 'x', 1)")
	_, notNull := db.ExecContext(ctx, "INSERT INTO t VALUES ('c', 'z', NULL)")
	_, syntax := db.ExecContext(ctx, "SELEKT 1")
	noRows := db.QueryRowContext(ctx, "SELECT k FROM t WHERE k = 'missing'").Scan(new(string))

	// A second connection to the file finds the write lock taken.
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, "INSERT INTO t VALUES ('d', 'd', 1)"); err != nil {
		t.Fatal(err)
	}
	_, busy := openRaw().ExecContext(ctx, "INSERT INTO t VALUES ('e', 'e', 1)")
	holder.Rollback()

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	_, ctxErr := db.ExecContext(canceled, "SELECT 1")

	tests := []struct {
		name string
		err  error
		want error // nil: an internal error, none of the sentinels
	}{
		{"primary key", primaryKey, storage.ErrConflict},
		{"unique", unique, storage.ErrConflict},
		{"busy", busy, storage.ErrUnavailable},
		{"no rows", noRows, storage.ErrNotFound},
		{"canceled", ctxErr, context.Canceled},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), context.DeadlineExceeded},
		{"conflict passes", storage.ErrConflict, storage.ErrConflict},
		{"not null", notNull, nil},
		{"syntax", syntax, nil},
		{"closed", sql.ErrConnDone, nil},
	}
	sentinels := []error{storage.ErrConflict, storage.ErrNotFound, storage.ErrUnavailable, context.Canceled}
	for _, tt := range tests {
		if tt.err == nil {
			t.Fatalf("%s: the setup produced no error", tt.name)
		}
		got := interpretError(tt.err)
		if tt.want != nil {
			if !errors.Is(got, tt.want) {
				t.Errorf("%s: interpretError(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
			}
			continue
		}
		if got == nil {
			t.Errorf("%s: interpretError(%v) = nil", tt.name, tt.err)
		}
		for _, s := range sentinels {
			if errors.Is(got, s) {
				t.Errorf("%s: interpretError(%v) = %v, want an internal error", tt.name, tt.err, got)
			}
		}
	}
	if err := interpretError(nil); err != nil {
		t.Errorf("interpretError(nil) = %v", err)
	}
}
