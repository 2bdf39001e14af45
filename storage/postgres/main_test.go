package postgres

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage/internal/groupcommit/groupcommittest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// withoutNotifications turns off the notifications of committed writes (see feed.go),
// which run a query of their own after a write, for tests that count or break the
// connections of requests.
var withoutNotifications Option = func(o *options) { o.noNotify = true }

// quiet keeps migration logs out of test output.
var quiet = WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// openStore opens a Store on url and closes it when t ends.
func openStore(t testing.TB, url string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, append([]Option{quiet, WithGroupCommit(groupcommittest.Enabled())}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newStore opens a Store on a fresh database.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openStore(t, pgtest.NewDatabase(t), opts...)
}

// connect opens a plain connection to url for a test to look at the database directly.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}

// execSQL runs SQL text (several statements allowed) on url.
func execSQL(t testing.TB, url, sql string) {
	t.Helper()
	if _, err := connect(t, url).Exec(context.Background(), sql); err != nil {
		t.Fatalf("exec: %v", err)
	}
}
