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
