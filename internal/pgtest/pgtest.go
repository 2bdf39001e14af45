// Package pgtest gives tests a real PostgreSQL server and an isolated database per test.
//
// A package that uses it calls Main from its TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and each test asks for its own database:
//
//	url := pgtest.NewDatabase(t)
//
// If the environment variable VSS_TEST_POSTGRES_URL holds the URL of a server (connected
// to a database the tests may use to CREATE and DROP DATABASE, such as "postgres"), the
// tests use that server. Otherwise Main starts a throwaway PostgreSQL cluster for the
// test binary: it runs initdb into a temporary directory (as the "postgres" user when
// the tests run as root, since initdb refuses root), serves it on 127.0.0.1 on a free
// port, and removes it when the tests end. It takes the binaries from
// VSS_TEST_POSTGRES_BIN if set, else from /usr/lib/postgresql/<version>/bin, else from
// PATH. When no server can be had, the tests fail with a message saying so: they never
// skip.
//
// Main publishes the started server's URL in VSS_TEST_POSTGRES_URL, so processes the
// tests start inherit it. Every test binary (one per package) gets its own cluster,
// which lets packages run in parallel.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that holds the administrative URL of the server the
// tests use.
const EnvURL = "VSS_TEST_POSTGRES_URL"

// EnvBin is the environment variable that may name the directory of the PostgreSQL
// server binaries (initdb, postgres) Main uses to start a cluster.
const EnvBin = "VSS_TEST_POSTGRES_BIN"

// Main runs the tests of m with a PostgreSQL server and exits with their status. It
// starts a throwaway cluster unless VSS_TEST_POSTGRES_URL is set, and stops and removes
// it after the tests. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(run(m))
}

// Run is Main without the exit: it returns the tests' exit status, for a TestMain that
// has cleaning up of its own to do afterwards.
func Run(m *testing.M) int { return run(m) }

func run(m *testing.M) int {
	if os.Getenv(EnvURL) != "" {
		return m.Run()
	}
	c, err := startCluster(ClusterOptions{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL for the tests: %v\n"+
			"pgtest: install the PostgreSQL server (initdb, postgres), set %s to its bin directory, "+
			"or set %s to the URL of a server the tests may use\n", err, EnvBin, EnvURL)
		return 1
	}
	defer c.stop()
	if err := os.Setenv(EnvURL, c.url); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	return m.Run()
}

// URL returns the administrative URL of the test server. It fails t when there is none,
// which means the package's TestMain does not call Main.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Fatalf("pgtest: no PostgreSQL server: call pgtest.Main(m) from TestMain, or set %s", EnvURL)
	}
	return u
}

// NewDatabase creates an empty database for t alone and returns its URL. The database is
// dropped, with any connection still open to it, when t and its subtests end.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := URL(t)
	name := databaseName(t.Name())
	dbURL, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	ident := pgx.Identifier{name}.Sanitize()
	if err := adminExec(admin, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := adminExec(admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dbURL
}

// databaseName derives a unique database name from a test name: a readable part, then
// random hex, within PostgreSQL's 63-byte identifier limit.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// withDatabase returns serverURL with its database replaced by name.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s must be a postgres:// URL", EnvURL)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// adminExec runs one statement on a fresh connection to the administrative database.
func adminExec(adminURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
