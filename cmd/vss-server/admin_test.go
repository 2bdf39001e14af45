package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// TestAdminCommands runs `vss-server admin usage` and `vss-server admin delete-user`
// through runAdmin against both stores, with the database named by flags and by the
// environment.
func TestAdminCommands(t *testing.T) {
	ctx := context.Background()
	fill := func(t *testing.T, s storage.Store) {
		t.Helper()
		for _, p := range []struct {
			user, store string
			items       []storage.KeyValue
		}{
			{"alice", "wallet", []storage.KeyValue{{Key: "monitor", Value: []byte("0123456789")}, {Key: storage.GlobalVersionKey}}},
			{"alice", "other", []storage.KeyValue{{Key: "k", Value: []byte("v")}}},
			{"bob", "wallet", []storage.KeyValue{{Key: "k", Value: []byte("vv")}}},
		} {
			for i := range p.items {
				p.items[i].Version = -1
			}
			if err := s.Put(ctx, p.user, storage.PutRequest{StoreID: p.store, Puts: p.items}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		// setUp fills a database and returns the flags and environment that name it.
		setUp func(t *testing.T) ([]string, map[string]string)
	}{
		{"embedded", func(t *testing.T) ([]string, map[string]string) {
			dir := t.TempDir()
			s, err := sqlite.Open(ctx, filepath.Join(dir, "vss.db"))
			if err != nil {
				t.Fatal(err)
			}
			fill(t, s)
			return []string{"--data-dir", dir}, map[string]string{"VSS_DATA_DIR": dir}
		}},
		{"postgresql", func(t *testing.T) ([]string, map[string]string) {
			url := pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{})
			s, err := postgres.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			fill(t, s)
			return []string{"--database-url", url}, map[string]string{"VSS_DATABASE_URL": url}
		}},
		{"reference configuration", func(t *testing.T) ([]string, map[string]string) {
			// The database named the way the reference server's operators name it: a
			// TOML file, or its VSS_PSQL_ variables.
			admin, err := url.Parse(pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{}))
			if err != nil {
				t.Fatal(err)
			}
			execAt(t, admin.String(), "CREATE DATABASE vss_admin")
			db := *admin
			db.Path = "/vss_admin"
			s, err := postgres.Open(ctx, db.String())
			if err != nil {
				t.Fatal(err)
			}
			fill(t, s)
			file := filepath.Join(t.TempDir(), "vss-server-config.toml")
			toml := fmt.Sprintf("[postgresql_config]\nusername = \"postgres\"\npassword = \"unused (trust authentication)\"\naddress = %q\ndefault_database = \"postgres\"\nvss_database = \"vss_admin\"\n", admin.Host)
			if err := os.WriteFile(file, []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"--config", file}, map[string]string{
				"VSS_PSQL_USERNAME": "postgres", "VSS_PSQL_PASSWORD": "unused", "VSS_PSQL_ADDRESS": admin.Host,
				"VSS_PSQL_DEFAULT_DB": "postgres", "VSS_PSQL_VSS_DB": "vss_admin",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags, envVars := tc.setUp(t)
			noEnv := func(string) string { return "" }
			run := func(args []string, env func(string) string, in string) (int, string, string) {
				var out, errOut bytes.Buffer
				code := runAdmin(ctx, args, env, strings.NewReader(in), &out, &errOut)
				return code, out.String(), errOut.String()
			}

			code, out, errOut := run(append([]string{"usage", "--json"}, flags...), noEnv, "")
			if code != 0 {
				t.Fatalf("usage --json: exit %d: %s", code, errOut)
			}
			var rows []usageJSON
			if err := json.Unmarshal([]byte(out), &rows); err != nil {
				t.Fatalf("usage --json printed %q: %v", out, err)
			}
			want := []usageJSON{
				{User: "alice", Bytes: 7 + 10 + 14 + 1 + 1, Keys: 3, Stores: 2},
				{User: "bob", Bytes: 1 + 2, Keys: 1, Stores: 1},
			}
			if len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
				t.Fatalf("usage = %+v, want %+v", rows, want)
			}
			// The table, for one user, with the database from the environment.
			code, out, errOut = run([]string{"usage", "--user", "bob"}, func(k string) string { return envVars[k] }, "")
			if code != 0 || !strings.Contains(out, "USER") || !strings.Contains(out, "bob") || strings.Contains(out, "alice") {
				t.Fatalf("usage --user bob: exit %d, output %q, %s", code, out, errOut)
			}
			if fields := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1]); strings.Join(fields, " ") != "bob 3 1 1" {
				t.Errorf("table row = %q", fields)
			}

			// delete-user asks first; anything but yes deletes nothing.
			code, out, _ = run(append([]string{"delete-user", "alice"}, flags...), noEnv, "no\n")
			if code != 1 || !strings.Contains(out, `Delete 3 keys (33 bytes) in 2 stores of user "alice"?`) {
				t.Fatalf("unconfirmed delete-user: exit %d, output %q", code, out)
			}
			code, out, errOut = run(append(flags, "delete-user", "alice"), noEnv, "yes\n")
			if code != 0 || !strings.Contains(out, `deleted 3 keys of user "alice"`) {
				t.Fatalf("confirmed delete-user: exit %d, output %q, %s", code, out, errOut)
			}
			code, out, _ = run(append([]string{"usage", "--json"}, flags...), noEnv, "")
			if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 1 || rows[0] != want[1] {
				t.Fatalf("usage after deleting alice: exit %d, %q", code, out)
			}
			code, out, _ = run(append([]string{"delete-user", "--yes", "bob"}, flags...), noEnv, "")
			if code != 0 || !strings.Contains(out, "deleted 1 keys") {
				t.Fatalf("delete-user --yes: exit %d, %q", code, out)
			}
			code, out, _ = run(append([]string{"delete-user", "nobody"}, flags...), noEnv, "")
			if code != 0 || !strings.Contains(out, "stores nothing") {
				t.Fatalf("delete-user of an unknown user: exit %d, %q", code, out)
			}
		})
	}
}

func TestAdminUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"usage", "extra"}, {"delete-user"}, {"delete-user", "a", "b"}, {"usage", "--no-such-flag"},
	} {
		if code := runAdmin(ctx, args, func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard); code != 2 {
			t.Errorf("admin %q: exit %d, want 2", args, code)
		}
	}
	if code := runAdmin(ctx, []string{"usage", "--database-url", "memory:"}, func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard); code != 1 {
		t.Errorf("admin usage on the in-memory store: exit %d, want 1", code)
	}
}

func TestParseLimitFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, _, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil || cfg.Quota != (storage.Quota{}) || cfg.RateLimit.Rate != 0 || cfg.RateLimit.Burst != 0 {
		t.Fatalf("defaults: %+v %+v %v", cfg.Quota, cfg.RateLimit, err)
	}
	cfg, _, err = parseConfig(nil, env(map[string]string{
		"VSS_QUOTA_MAX_BYTES": "1073741824", "VSS_QUOTA_MAX_KEYS": "100000", "VSS_RATE_LIMIT": "20", "VSS_RATE_BURST": "200",
	}), io.Discard)
	if err != nil || cfg.Quota != (storage.Quota{MaxBytes: 1 << 30, MaxKeys: 100000}) || cfg.RateLimit.Rate != 20 || cfg.RateLimit.Burst != 200 {
		t.Fatalf("from the environment: %+v %+v %v", cfg.Quota, cfg.RateLimit, err)
	}
	cfg, _, err = parseConfig([]string{"--quota-max-bytes", "5", "--rate-limit", "0.5"}, env(map[string]string{"VSS_QUOTA_MAX_BYTES": "9"}), io.Discard)
	if err != nil || cfg.Quota.MaxBytes != 5 || cfg.RateLimit.Rate != 0.5 {
		t.Fatalf("flags: %+v %+v %v", cfg.Quota, cfg.RateLimit, err)
	}
	for _, bad := range [][]string{
		{"--quota-max-bytes", "-1"}, {"--quota-max-keys", "many"}, {"--rate-limit", "-3"}, {"--rate-limit", "NaN"}, {"--rate-burst", "1.5"},
	} {
		if _, _, err := parseConfig(bad, env(nil), io.Discard); err == nil {
			t.Errorf("parseConfig(%q) accepted", bad)
		}
	}
}

// TestAdminRefusesMissingStores runs the admin commands where there is no store: they
// fail, say where they looked, and create nothing (no directory, no database file, no
// database, no tables).
func TestAdminRefusesMissingStores(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	run := func(args []string, env map[string]string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "no-such-dir")
		for _, tc := range []struct {
			args []string
			env  map[string]string
		}{
			{[]string{"usage", "--data-dir", dir}, nil},
			{[]string{"usage", "--json"}, map[string]string{"VSS_DATA_DIR": dir}},
			{[]string{"delete-user", "--yes", "alice", "--data-dir", dir}, nil},
		} {
			code, out, errOut := run(tc.args, tc.env)
			abs := filepath.Join(dir, "vss.db")
			if code != 1 || out != "" || !strings.Contains(errOut, "no store at embedded store "+abs) {
				t.Errorf("admin %q: exit %d, stdout %q, stderr %q; want exit 1 naming %s", tc.args, code, out, errOut, abs)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("admin %q created %s (%v)", tc.args, dir, err)
			}
		}
		// The default data directory is relative: the message gives it as an absolute path.
		code, _, errOut := run([]string{"usage", "--data-dir", "relative/dir"}, nil)
		if wd, _ := os.Getwd(); code != 1 || !strings.Contains(errOut, filepath.Join(wd, "relative", "dir", "vss.db")) {
			t.Errorf("relative --data-dir: exit %d, %q", code, errOut)
		}
	})

	t.Run("empty embedded store", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s, err := sqlite.Open(ctx, filepath.Join(dir, "vss.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run([]string{"usage", "--json", "--data-dir", dir}, nil)
		if code != 0 || out != "[]\n" || !strings.Contains(errOut, "no entries in embedded store "+filepath.Join(dir, "vss.db")) {
			t.Errorf("usage of an empty store: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("postgresql", func(t *testing.T) {
		t.Parallel()
		admin, err := url.Parse(pgtest.NewConfiguredCluster(t, pgtest.ClusterOptions{}))
		if err != nil {
			t.Fatal(err)
		}
		missing := *admin
		missing.Path = "/vss_missing"
		execAt(t, admin.String(), "CREATE DATABASE vss_empty")
		empty := *admin
		empty.Path = "/vss_empty"
		for _, tc := range []struct {
			name, want string
			args       []string
			env        map[string]string
		}{
			{"missing database", `"vss_missing" does not exist`, []string{"usage", "--database-url", missing.String()}, nil},
			{"missing database from the reference settings, which create it for the server", "vss_missing",
				[]string{"usage"}, map[string]string{
					"VSS_PSQL_USERNAME": "postgres", "VSS_PSQL_PASSWORD": "unused", "VSS_PSQL_ADDRESS": admin.Host,
					"VSS_PSQL_DEFAULT_DB": "postgres", "VSS_PSQL_VSS_DB": "vss_missing",
				}},
			{"database without a store", "holds no VSS data", []string{"usage", "--database-url", empty.String()}, nil},
			{"delete-user in a database without a store", "holds no VSS data", []string{"delete-user", "--yes", "bob", "--database-url", empty.String()}, nil},
		} {
			code, out, errOut := run(tc.args, tc.env)
			where := "PostgreSQL database postgres://postgres@" + admin.Host + "/vss_"
			if code != 1 || out != "" || !strings.Contains(errOut, where) || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1, %q and %q", tc.name, code, out, errOut, where, tc.want)
			}
		}
		if got := queryStrings(t, admin.String(), "SELECT datname::text FROM pg_database WHERE datname LIKE 'vss_%' ORDER BY 1"); len(got) != 1 || got[0] != "vss_empty" {
			t.Errorf("databases after the admin commands: %q, want only vss_empty", got)
		}
		if got := queryStrings(t, empty.String(), "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'"); len(got) != 0 {
			t.Errorf("tables created in the empty database: %q", got)
		}
	})
}

// TestAdminHelp prints the admin help on standard output when asked, and on standard
// error with exit code 2 when no command is given.
func TestAdminHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args           []string
		code           int
		stdout, stderr bool
	}{
		{[]string{"help"}, 0, true, false},
		{[]string{"--help"}, 0, true, false},
		{[]string{"usage", "-h"}, 0, true, false},
		{nil, 2, false, true},
	} {
		var out, errOut bytes.Buffer
		code := runAdmin(context.Background(), tc.args, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
		if code != tc.code || strings.Contains(out.String(), "delete-user USER") != tc.stdout || strings.Contains(errOut.String(), "delete-user USER") != tc.stderr {
			t.Errorf("admin %q: exit %d, stdout %q, stderr %q", tc.args, code, out.String(), errOut.String())
		}
	}
}
