package app

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
)

// TestPostgresTLS starts a PostgreSQL server with TLS whose certificate a made-up CA
// signed, and a role that may connect over TLS only. It checks that the server's store
// connects with that CA as the extra root (creating its database on the way), and that
// it refuses a server certificate of another CA, and plaintext, and the system roots
// alone.
func TestPostgresTLS(t *testing.T) {
	ca := newTestCA(t, "PostgreSQL test CA")
	certPEM, keyPEM := ca.issue(t, 1)
	admin := pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{
		Files: map[string][]byte{
			"server.crt": certPEM,
			"server.key": keyPEM,
			// The role vss may connect over TLS only; the administrative role postgres
			// (which pgtest uses without TLS) from anywhere.
			"pg_hba.conf": []byte("local all all trust\n" +
				"hostssl all vss 127.0.0.1/32 trust\n" +
				"host all vss 127.0.0.1/32 reject\n" +
				"host all all 127.0.0.1/32 trust\n"),
		},
		Settings: map[string]string{
			"ssl":           "on",
			"ssl_cert_file": "'server.crt'",
			"ssl_key_file":  "'server.key'",
		},
	})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE ROLE vss LOGIN CREATEDB PASSWORD 'secret'"); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	// The URL asks for no TLS: DatabaseOptions must win over it, as with the reference
	// server's settings.
	dbURL := "postgres://vss:secret@" + u.Host + "/vss_tls?sslmode=disable"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	open := func(o DatabaseOptions) (storage.Store, error) {
		opts, err := o.postgresOptions()
		if err != nil {
			return nil, err
		}
		s, _, err := OpenStore(ctx, dbURL, "", true, log, opts...)
		return s, err
	}

	other := newTestCA(t, "another CA")
	for _, c := range []struct {
		name string
		o    DatabaseOptions
		want string // part of the error
	}{
		{"plaintext", DatabaseOptions{CreateFrom: "postgres"}, "pg_hba.conf rejects"},
		{"another root", DatabaseOptions{TLS: true, RootPEM: string(other.pem), CreateFrom: "postgres"}, "certificate"},
		{"system roots", DatabaseOptions{TLS: true, CreateFrom: "postgres"}, "certificate"},
	} {
		s, err := open(c.o)
		if err == nil {
			s.Close()
			t.Fatalf("%s: connected", c.name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to mention %q", c.name, err, c.want)
		}
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'vss_tls')").Scan(&exists); err != nil || exists {
		t.Fatalf("vss_tls exists before a good connection: %v %v", exists, err)
	}

	s, err := open(DatabaseOptions{TLS: true, RootPEM: string(ca.pem), CreateFrom: "postgres"})
	if err != nil {
		t.Fatalf("open with the right root: %v", err)
	}
	defer s.Close()
	if err := s.Put(ctx, "alice", storage.PutRequest{StoreID: "w", Puts: []storage.KeyValue{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(ctx, "alice", "w", "k"); err != nil || string(kv.Value) != "v" || kv.Version != 1 {
		t.Fatalf("get = %+v, %v", kv, err)
	}
	var ssl int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE usename = 'vss' AND ssl").Scan(&ssl); err != nil || ssl == 0 {
		t.Fatalf("TLS connections of vss: %d, %v", ssl, err)
	}

	// Opening again finds the database there and leaves it alone.
	s2, err := open(DatabaseOptions{TLS: true, RootPEM: string(ca.pem), CreateFrom: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if kv, err := s2.Get(ctx, "alice", "w", "k"); err != nil || string(kv.Value) != "v" {
		t.Fatalf("get after reopening = %+v, %v", kv, err)
	}

	// A database URL does the same with libpq's parameters.
	dir := t.TempDir()
	for _, c := range []struct {
		root []byte
		ok   bool
	}{{ca.pem, true}, {other.pem, false}} {
		rootFile := filepath.Join(dir, "root.pem")
		if err := os.WriteFile(rootFile, c.root, 0o600); err != nil {
			t.Fatal(err)
		}
		s, _, err := OpenStore(ctx, "postgres://vss:secret@"+u.Host+"/vss_tls?sslmode=verify-full&sslrootcert="+url.QueryEscape(rootFile), "", true, log)
		if err == nil {
			_, err = s.Get(ctx, "alice", "w", "k")
			s.Close()
		}
		if (err == nil) != c.ok {
			t.Errorf("sslrootcert, should connect %v: %v", c.ok, err)
		}
	}
}

func TestDatabaseOptionsRefuseNonsense(t *testing.T) {
	for _, o := range []DatabaseOptions{
		{TLS: true, RootPEM: "not a certificate"},
		{RootPEM: string(newTestCA(t, "ca").pem)},
	} {
		if _, err := o.postgresOptions(); err == nil {
			t.Errorf("postgresOptions(%+v) accepted", o)
		}
	}
}
