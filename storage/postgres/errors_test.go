package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

func TestInterpretError(t *testing.T) {
	t.Parallel()
	internal := errors.New("internal")
	for _, c := range []struct {
		name string
		err  error
		want error // a sentinel, internal for none, nil for nil
	}{
		{"nil", nil, nil},
		{"no rows", pgx.ErrNoRows, storage.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, storage.ErrConflict},
		{"version conflict raised by PutObjects", &pgconn.PgError{Code: "VS409"}, storage.ErrConflict},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, storage.ErrUnavailable},
		{"deadlock", fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40P01"}), storage.ErrUnavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, storage.ErrUnavailable},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, storage.ErrUnavailable},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, storage.ErrUnavailable},
		{"connection failure", &pgconn.PgError{Code: "08006"}, storage.ErrUnavailable},
		{"too many connections", &pgconn.PgError{Code: "53300"}, storage.ErrUnavailable},
		{"a standby now", &pgconn.PgError{Code: "25006"}, storage.ErrUnavailable},
		{"eof", fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), storage.ErrUnavailable},
		{"network", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, storage.ErrUnavailable},
		{"closed conn", fmt.Errorf("x: %w", pgconn.ErrConnClosed), storage.ErrUnavailable},
		{"closed pool", puddle.ErrClosedPool, storage.ErrUnavailable},
		{"undefined table", &pgconn.PgError{Code: "42P01", Message: `relation "vss_db" does not exist`}, internal},
		{"check violation", &pgconn.PgError{Code: "23514"}, internal},
		{"other", errors.New("boom"), internal},
	} {
		got := interpretError(c.err)
		switch c.want {
		case nil:
			if got != nil {
				t.Errorf("%s: %v, want nil", c.name, got)
			}
		case internal:
			if got == nil || errors.Is(got, storage.ErrConflict) || errors.Is(got, storage.ErrNotFound) ||
				errors.Is(got, storage.ErrUnavailable) || !errors.Is(got, c.err) {
				t.Errorf("%s: %v, want an internal error wrapping the cause", c.name, got)
			}
		default:
			if !errors.Is(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
			if c.want == storage.ErrUnavailable && !errors.Is(got, c.err) {
				t.Errorf("%s: %v does not wrap its cause", c.name, got)
			}
		}
	}
	// A cancelled or expired context passes through as it is.
	for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
		err := fmt.Errorf("query: %w", ctxErr)
		if got := interpretError(err); got != err {
			t.Errorf("interpretError(%v) = %v, want it unchanged", err, got)
		}
	}
}

// TestOpenUnreachable opens a port nothing listens on.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(context.Background(), "postgres://postgres@"+addr+"/vss?sslmode=disable&connect_timeout=5", quiet)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open: %v, want ErrUnavailable", err)
	}
	t.Log(err)
}

// TestUnavailableAfterTermination cuts the store's connection from the server side,
// as a server restart does: the next call fails with ErrUnavailable, the one after
// works on a new connection.
func TestUnavailableAfterTermination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	// Without the notifications of committed writes: the notifier's own query after
	// the put could meet the terminated connection first and replace it.
	s := openStore(t, withOneConn(t, dbURL), withoutNotifications)
	put(t, s, "u", "s", kv("k", 0, "v"))

	// The migration's own connection is closed by the time Open returns, but its backend
	// may take a moment to leave pg_stat_activity: wait until only the store's is there.
	admin := connect(t, dbURL)
	for deadline := time.Now().Add(5 * time.Second); ; {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var terminated int
	if err := admin.QueryRow(ctx, `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
		  AND backend_type = 'client backend'`).Scan(&terminated); err != nil { // not an autovacuum worker
		t.Fatal(err)
	}
	if terminated != 1 {
		t.Fatalf("terminated %d connections, want the store's one", terminated)
	}
	time.Sleep(100 * time.Millisecond) // let the backend go

	if _, err := s.Get(ctx, "u", "s", "k"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get on a terminated connection: %v, want ErrUnavailable", err)
	} else {
		t.Log(err)
	}
	if got := get(t, s, "u", "s", "k"); string(got.Value) != "v" {
		t.Fatalf("Get after reconnecting = %+v", got)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_ = s.Close()
	if _, err := s.Get(context.Background(), "u", "s", "k"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get on a closed store: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(context.Background()); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Ping on a closed store: %v, want ErrUnavailable", err)
	}
}

func TestCancelledContext(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, "u", "s", "k"); !errors.Is(err, context.Canceled) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get with a cancelled context: %v, want context.Canceled", err)
	}
}
