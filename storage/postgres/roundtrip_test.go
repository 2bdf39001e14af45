package postgres

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// countingTracer counts what pgx does: queries (Query, QueryRow, Exec), batches, and
// statements actually prepared (not found in the connection's cache).
type countingTracer struct {
	queries, batches, prepares atomic.Int64
}

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *countingTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}

func (c *countingTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (c *countingTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (c *countingTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

func (c *countingTracer) TracePrepareEnd(_ context.Context, _ *pgx.Conn, data pgx.TracePrepareEndData) {
	if !data.AlreadyPrepared {
		c.prepares.Add(1)
	}
}

// countingConn counts the writes to a database connection. pgx writes each request
// (a query, a prepare, a batch, a ping) in one write and then waits for the answer, so
// writes are round trips, including any pgx would make without tracing them.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// withOneConn limits the pool of a store opened on dbURL to one connection.
func withOneConn(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "1")
	u.RawQuery = q.Encode()
	return u.String()
}

// counted is what a store opened by openCounted did: pgx's queries, batches and
// prepares, and the writes to its one connection (its round trips).
type counted struct {
	tracer countingTracer
	writes atomic.Int64
}

func (c *counted) reset() {
	c.tracer.queries.Store(0)
	c.tracer.batches.Store(0)
	c.tracer.prepares.Store(0)
	c.writes.Store(0)
}

func (c *counted) load() (queries, batches, prepares, writes int64) {
	return c.tracer.queries.Load(), c.tracer.batches.Load(), c.tracer.prepares.Load(), c.writes.Load()
}

// openCounted opens a store with a one-connection pool on a fresh database, counting
// what it does. One connection, so every call reuses the statements prepared on it.
func openCounted(t *testing.T, opts ...Option) (*Store, *counted) {
	t.Helper()
	c := &counted{}
	countWrites := func(o *options) {
		o.configure = func(cfg *pgxpool.Config) {
			var d net.Dialer
			cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{Conn: conn, writes: &c.writes}, nil
			}
		}
	}
	// The notifications of committed writes travel apart from the request, later (see
	// feed.go): they are not the request's round trips.
	opts = append([]Option{WithTracer(&c.tracer), countWrites, withoutNotifications}, opts...)
	return openStore(t, withOneConn(t, pgtest.NewDatabase(t)), opts...), c
}

// keyValues are n items key-0000, key-0001, ... at version, with the value "value".
func keyValues(n int, version int64) []storage.KeyValue {
	out := make([]storage.KeyValue, n)
	for i := range out {
		out[i] = kv(fmt.Sprintf("key-%04d", i), version, "value")
	}
	return out
}

// TestRoundTrips checks that each Store call is one round trip, whatever the size of a
// Put, once the statement is prepared on the connection (pgx's statement cache does
// that once per connection). It runs with the group commit on, the default: a write
// that meets no other is committed alone at once.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	s, c := openCounted(t)
	ops := []struct {
		name string
		op   func() error
	}{
		{"Put 1 item", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", -1, "v")}})
		}},
		{"Put 1000 unconditional", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big-unconditional", Puts: keyValues(1000, -1)})
		}},
		{"Put 1000 creates", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Puts: keyValues(1000, 0)})
		}},
		{"Put 1000 updates", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Puts: keyValues(1000, 1)})
		}},
		{"Put 1000 deletes", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "big", Deletes: keyValues(1000, 2)})
		}},
		{"Put conflict", func() error {
			err := s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", 0, "v")}})
			if err != storage.ErrConflict {
				return fmt.Errorf("err = %v, want ErrConflict", err)
			}
			return nil
		}},
		{"Get", func() error { _, err := s.Get(ctx, "u", "one", "k"); return err }},
		{"Get missing", func() error {
			if _, err := s.Get(ctx, "u", "one", "missing"); err != storage.ErrNotFound {
				return fmt.Errorf("err = %v, want ErrNotFound", err)
			}
			return nil
		}},
		{"List with global version", func() error {
			_, err := s.List(ctx, "u", storage.ListRequest{StoreID: "one", Before: storage.ListStart, Limit: 100, WithGlobalVersion: true})
			return err
		}},
		{"List later page", func() error {
			_, err := s.List(ctx, "u", storage.ListRequest{StoreID: "one", Before: 1 << 40, Limit: 100})
			return err
		}},
		{"Delete", func() error { return s.Delete(ctx, "u", "one", "k", -1) }},
		{"UseChallenge", func() error {
			return s.UseChallenge(ctx, []byte("challenge-2"), time.Now().Add(time.Minute))
		}},
		{"UseChallenge replayed", func() error {
			if err := s.UseChallenge(ctx, []byte("challenge-2"), time.Now().Add(time.Minute)); err != storage.ErrConflict {
				return fmt.Errorf("err = %v, want ErrConflict", err)
			}
			return nil
		}},
		{"Secret", func() error {
			_, err := s.Secret(ctx, "secret", func() ([]byte, error) { return []byte("new"), nil })
			return err
		}},
	}

	// Prepare every statement on the connection.
	for _, o := range ops[:1] {
		_ = o.op()
	}
	// The conditional statement, failing without an error: a statement that fails with
	// one (such as a conditional put of a missing key, which PutObjects abandons with
	// vss_abort) is dropped from pgx's statement cache and prepared again at its next use.
	_ = s.Put(ctx, "u", storage.PutRequest{StoreID: "one", Puts: []storage.KeyValue{kv("k", 5, "v")}})
	_ = s.Delete(ctx, "u", "one", "none", -1)
	_, _ = s.Get(ctx, "u", "one", "k")
	_, _ = s.List(ctx, "u", storage.ListRequest{StoreID: "one", Before: storage.ListStart, Limit: 1})
	_ = s.UseChallenge(ctx, []byte("challenge-1"), time.Now().Add(time.Minute))
	_, _ = s.Secret(ctx, "secret", func() ([]byte, error) { return []byte("first"), nil })

	// Let the connection idle past the second after which pgxpool would ping it before
	// handing it out by default.
	time.Sleep(1100 * time.Millisecond)

	for _, o := range ops {
		c.reset()
		if err := o.op(); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		q, b, p, w := c.load()
		// A write is a batch (of one request's statements, see sendBatch); anything else
		// a single query.
		if q+b != 1 || p != 0 || w != 1 {
			t.Errorf("%s: %d queries, %d batches, %d prepares, %d round trips; want 1 query or batch and 1 round trip",
				o.name, q, b, p, w)
		}
	}
}
