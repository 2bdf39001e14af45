package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	neturl "net/url"
	"testing"
	"time"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// TestHealthEndsWithTheNextSuccess checks that every kind of database call the store
// makes ends a stretch of unavailability when it succeeds: a read (a query), a write
// (alone or in a group commit's batch) and a ping; and that a connection error, but no
// other failure, begins one.
func TestHealthEndsWithTheNextSuccess(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	calls := []struct {
		name string
		call func() error
	}{
		{"read", func() error {
			_, err := s.Get(ctx, "u", "s", "missing")
			if errors.Is(err, storage.ErrNotFound) {
				return nil
			}
			return err
		}},
		{"write", func() error {
			return s.Put(ctx, "u", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{{Key: "k", Version: -1, Value: []byte("v")}}})
		}},
		{"ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		s.health.observe(context.Canceled)
		s.health.observe(errors.New("some failure"))
		if h := s.DatabaseHealth(); !h.UnavailableSince.IsZero() {
			t.Fatalf("%s: failures that are no connection errors made the database unavailable: %+v", c.name, h)
		}
		before := s.DatabaseHealth()
		s.health.observe(io.ErrUnexpectedEOF)
		time.Sleep(10 * time.Millisecond)
		if h := s.DatabaseHealth(); h.UnavailableSince.IsZero() || h.ConnectionErrors != before.ConnectionErrors+1 {
			t.Fatalf("%s: a connection error did not make the database unavailable: %+v", c.name, h)
		}
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h := s.DatabaseHealth()
		if !h.UnavailableSince.IsZero() || h.Unavailable < before.Unavailable+10*time.Millisecond {
			t.Errorf("%s: a successful call did not end the stretch: %+v (before %+v)", c.name, h, before)
		}
	}
}

// TestNoStatementTimeout checks that the store's sessions run without a statement
// timeout although the database sets one, and that the URL's own setting wins.
func TestNoStatementTimeout(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var db string
	if err := connect(t, url).QueryRow(context.Background(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	execSQL(t, url, `ALTER DATABASE "`+db+`" SET statement_timeout = '5s'`)
	for _, tc := range []struct{ url, want string }{{url, "0"}, {url + "&statement_timeout=7000", "7s"}} {
		s := openStore(t, tc.url)
		var got string
		if err := s.pool.QueryRow(context.Background(), "SHOW statement_timeout").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: statement_timeout %q, want %q", tc.url, got, tc.want)
		}
	}
}

// TestConnectSkipsAHostThatDoesNotAnswer puts a host that accepts connections but never
// answers (as a frozen machine would) first in a multi-host URL without a
// connect_timeout: the default one lets the driver give it up and use the next host,
// instead of waiting for ever.
func TestConnectSkipsAHostThatDoesNotAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // accepted and never answered
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	u, err := neturl.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String() + "," + u.Host
	start := time.Now()
	s := openStore(t, u.String())
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("opened past the silent host in %s", time.Since(start).Round(time.Millisecond))
}
