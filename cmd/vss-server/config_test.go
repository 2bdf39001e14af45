package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govss/vss/internal/app"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// writeConfig writes a configuration file into a temporary directory.
func writeConfig(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReferenceConfigFile reads the reference server's configuration file the way an
// operator starts it: as the first argument, with and without the environment
// variables that override it, and with our flags on top.
func TestReferenceConfigFile(t *testing.T) {
	file := filepath.Join("testdata", "vss-server-config.toml")
	var stderr bytes.Buffer
	cfg, log, err := parseConfig([]string{file}, mapEnv(nil), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres://postgres:postgres@127.0.0.1:5432/vss?sslmode=disable"
	if cfg.Listen != "127.0.0.1:8080" || cfg.DatabaseURL != want || cfg.MaxBodyBytes != 16<<20 ||
		cfg.Database != (app.DatabaseOptions{CreateFrom: "postgres"}) {
		t.Fatalf("from the file: %+v", cfg)
	}
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("log_config.level = debug did not set the level")
	}
	if !strings.Contains(stderr.String(), "sentry_config.environment is ignored") {
		t.Errorf("no warning about the unknown setting:\n%s", stderr.String())
	}

	env := map[string]string{
		"VSS_BIND_ADDRESS":          "0.0.0.0:9000",
		"VSS_MAX_REQUEST_BODY_SIZE": "1073741824",
		"VSS_LOG_LEVEL":             "warn",
		"VSS_JWT_RSA_PEM":           "-----BEGIN PUBLIC KEY-----",
		"VSS_PSQL_USERNAME":         "vss user",
		"VSS_PSQL_PASSWORD":         "p@ss/word",
		"VSS_PSQL_ADDRESS":          "db.internal:6543",
		"VSS_PSQL_DEFAULT_DB":       "template1",
		"VSS_PSQL_VSS_DB":           "vss_prod",
		"VSS_PSQL_CRT_PEM":          "-----BEGIN CERTIFICATE-----",
	}
	cfg, log, err = parseConfig([]string{file}, mapEnv(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	if cfg.Listen != "0.0.0.0:9000" || cfg.MaxBodyBytes != 1<<30 || cfg.Auth.JWTPublicKeyPEM != env["VSS_JWT_RSA_PEM"] ||
		u.User.Username() != "vss user" || pass != "p@ss/word" || u.Host != "db.internal:6543" || u.Path != "/vss_prod" ||
		u.Query().Get("sslmode") != "verify-full" ||
		cfg.Database != (app.DatabaseOptions{TLS: true, RootPEM: env["VSS_PSQL_CRT_PEM"], CreateFrom: "template1"}) {
		t.Fatalf("the environment must override the file: %+v", cfg)
	}
	if log.Enabled(context.Background(), slog.LevelInfo) || !log.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("VSS_LOG_LEVEL=warn did not override the file")
	}

	// Our variables win over the reference ones, and flags over both.
	env["VSS_LISTEN"] = "127.0.0.1:7000"
	cfg, _, err = parseConfig([]string{file, "--max-body-bytes", "5"}, mapEnv(env), io.Discard)
	if err != nil || cfg.Listen != "127.0.0.1:7000" || cfg.MaxBodyBytes != 5 {
		t.Fatalf("our variables and flags: %+v, %v", cfg, err)
	}
	var warn bytes.Buffer
	cfg, _, err = parseConfig([]string{"--database-url", "memory:", "--config", file}, mapEnv(nil), &warn)
	if err != nil || cfg.DatabaseURL != "memory:" || cfg.Database != (app.DatabaseOptions{}) || cfg.Listen != "127.0.0.1:8080" {
		t.Fatalf("--config with --database-url: %+v, %v", cfg, err)
	}
	if !strings.Contains(warn.String(), "VSS_PSQL_ settings are ignored") {
		t.Errorf("no warning that --database-url overrides [postgresql_config]:\n%s", warn.String())
	}
}

// TestReferenceEnvironmentOnly configures the server with the reference server's
// variables alone, as its container images are.
func TestReferenceEnvironmentOnly(t *testing.T) {
	cfg, _, err := parseConfig(nil, mapEnv(map[string]string{
		"VSS_BIND_ADDRESS":  "127.0.0.1:8081",
		"VSS_PSQL_USERNAME": "u", "VSS_PSQL_PASSWORD": "p", "VSS_PSQL_ADDRESS": "localhost:5432",
		"VSS_PSQL_DEFAULT_DB": "postgres", "VSS_PSQL_VSS_DB": "vss", "VSS_PSQL_TLS": "1",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8081" || cfg.DatabaseURL != "postgres://u:p@localhost:5432/vss?sslmode=verify-full" ||
		cfg.Database != (app.DatabaseOptions{TLS: true, CreateFrom: "postgres"}) {
		t.Fatalf("%+v", cfg)
	}
	_, _, err = parseConfig(nil, mapEnv(map[string]string{"VSS_PSQL_ADDRESS": "localhost:5432"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "VSS_PSQL_USERNAME") || !strings.Contains(err.Error(), "VSS_PSQL_VSS_DB") {
		t.Fatalf("incomplete PostgreSQL settings: %v", err)
	}
}

// TestOlderReferenceConfigFiles reads the formats of earlier reference releases.
func TestOlderReferenceConfigFiles(t *testing.T) {
	ca := writeConfig(t, "ca.pem", "-----BEGIN CERTIFICATE-----\n")
	for _, c := range []struct {
		name, file string
		env        map[string]string
		listen     string
		url        string
		db         app.DatabaseOptions
		jwtFile    string
	}{{
		name: "host and port, one database",
		file: `[server_config]
host = "0.0.0.0"
port = 8080
store_type = "postgres"
[postgresql_config]
username = "postgres"
password = "postgres"
host = "localhost"
port = 5432
database = "postgres"
`,
		listen: "0.0.0.0:8080", url: "postgres://postgres:postgres@localhost:5432/postgres?sslmode=disable",
	}, {
		name: "credentials from VSS_POSTGRESQL_, CA file, RSA key file",
		file: `[server_config]
host = "127.0.0.1"
port = 8080
rsa_pub_file_path = "/etc/vss/rsa.pem"
[postgresql_config]
host = "db"
port = 5433
default_database = "postgres"
vss_database = "vss"
[postgresql_config.tls]
ca_file = "` + ca + `"
`,
		env:    map[string]string{"VSS_POSTGRESQL_USERNAME": "a", "VSS_POSTGRESQL_PASSWORD": "b"},
		listen: "127.0.0.1:8080", url: "postgres://a:b@db:5433/vss?sslmode=verify-full",
		db:      app.DatabaseOptions{TLS: true, RootPEM: "-----BEGIN CERTIFICATE-----\n", CreateFrom: "postgres"},
		jwtFile: "/etc/vss/rsa.pem",
	}, {
		name: "TLS with the system roots",
		file: `[server_config]
bind_address = "[::1]:8080"
[postgresql_config]
username = "u"
password = "p"
address = "[::1]:5432"
default_database = "postgres"
vss_database = "vss"
[postgresql_config.tls]
`,
		listen: "[::1]:8080", url: "postgres://u:p@[::1]:5432/vss?sslmode=verify-full",
		db: app.DatabaseOptions{TLS: true, CreateFrom: "postgres"},
	}, {
		name: "in-memory store", file: "[server_config]\nbind_address = \"127.0.0.1:1\"\nstore_type = \"in_memory\"\n",
		listen: "127.0.0.1:1", url: "memory:",
	}} {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, "vss-server-config.toml", c.file)
			var stderr bytes.Buffer
			cfg, _, err := parseConfig([]string{path}, mapEnv(c.env), &stderr)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Listen != c.listen || cfg.DatabaseURL != c.url || cfg.Database != c.db || cfg.Auth.JWTPublicKeyFile != c.jwtFile {
				t.Fatalf("got %+v", cfg)
			}
			if strings.Contains(stderr.String(), "unknown setting") {
				t.Errorf("warned about a reference setting:\n%s", stderr.String())
			}
		})
	}
}

// TestOwnSettingsInConfigFile sets our own settings in the [vss] table, below our
// variables and flags.
func TestOwnSettingsInConfigFile(t *testing.T) {
	path := writeConfig(t, "server.toml", `[server_config]
bind_address = "127.0.0.1:8080"
[vss]
listen = "127.0.0.1:9090"
database_url = "memory:"
auth = "signature,jwt"
tls_cert_file = "/etc/vss/tls.crt"
tls_key_file = "/etc/vss/tls.key"
cors_origins = ["https://a.example", "https://b.example"]
explorer = true
no_such_setting = 1
`)
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{"--config=" + path}, mapEnv(map[string]string{"VSS_AUTH": "none"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9090" || cfg.DatabaseURL != "memory:" || cfg.Auth.Schemes != "none" ||
		cfg.TLSCertFile != "/etc/vss/tls.crt" || cfg.TLSKeyFile != "/etc/vss/tls.key" || !cfg.Explorer ||
		strings.Join(cfg.CORSOrigins, " ") != "https://a.example https://b.example" {
		t.Fatalf("%+v", cfg)
	}
	if !strings.Contains(stderr.String(), "vss.no_such_setting is ignored") {
		t.Errorf("no warning about vss.no_such_setting:\n%s", stderr.String())
	}
}

// TestExampleConfigFile reads the example shipped in release archives.
func TestExampleConfigFile(t *testing.T) {
	var stderr bytes.Buffer
	cfg, _, err := parseConfig([]string{filepath.Join("..", "..", "deploy", "vss-server-config.toml")}, mapEnv(nil), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.DatabaseURL != "postgres://vss:change-me@127.0.0.1:5432/vss?sslmode=disable" ||
		cfg.Database != (app.DatabaseOptions{CreateFrom: "postgres"}) {
		t.Fatalf("%+v", cfg)
	}
	if strings.Contains(stderr.String(), "level=WARN") {
		t.Errorf("warnings:\n%s", stderr.String())
	}
}

func TestConfigFileErrors(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"missing file":         {args: []string{filepath.Join(t.TempDir(), "missing.toml")}},
		"not TOML":             {args: []string{writeConfig(t, "bad.toml", "[server_config\n")}},
		"wrong type":           {args: []string{writeConfig(t, "type.toml", "[server_config]\nbind_address = 2024-01-01\n")}},
		"bad store type":       {args: []string{writeConfig(t, "store.toml", "[server_config]\nstore_type = \"redis\"\n")}},
		"incomplete postgres":  {args: []string{writeConfig(t, "pg.toml", "[postgresql_config]\naddress = \"localhost:5432\"\n")}},
		"--config needs value": {args: []string{"--config"}},
		"two files":            {args: []string{writeConfig(t, "a.toml", ""), "--config", "b.toml"}},
		"TLS without database": {env: map[string]string{"VSS_PSQL_TLS": "true"}},
		"bad log level":        {env: map[string]string{"VSS_LOG_LEVEL": "loud"}},
	} {
		if _, _, err := parseConfig(c.args, mapEnv(c.env), io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A first argument that is no file and does not end in .toml is not a
	// configuration file (it may be a subcommand): the flags refuse it.
	if _, _, err := parseConfig([]string{"admin"}, mapEnv(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "unexpected arguments") {
		t.Errorf("a stray argument: %v", err)
	}
}

func TestLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vss.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfig(t, "c.toml", "[log_config]\nlevel = \"info\"\nfile = \"/nonexistent/dir/vss.log\"\n")
	_, log, err := parseConfig([]string{cfgFile}, mapEnv(map[string]string{"VSS_LOG_FILE": path}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello from the test")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "earlier line\n") || !strings.Contains(string(b), "hello from the test") {
		t.Fatalf("log file:\n%s", b)
	}
	if _, _, err := parseConfig([]string{cfgFile}, mapEnv(nil), io.Discard); err == nil {
		t.Error("a log file in a missing directory was accepted")
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"trace": slog.LevelDebug, "DEBUG": slog.LevelDebug, "info": slog.LevelInfo, "Warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "error": slog.LevelError,
	} {
		if got, err := parseLogLevel(in); err != nil || got != want {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if off, err := parseLogLevel("off"); err != nil || off <= slog.LevelError {
		t.Errorf("off = %v, %v", off, err)
	}
	if _, err := parseLogLevel("verbose"); err == nil {
		t.Error("verbose accepted")
	}
}

func TestVersion(t *testing.T) {
	if v := versionString(); !strings.HasPrefix(v, "vss-server ") || !strings.Contains(v, "go1.") {
		t.Errorf("versionString() = %q", v)
	}
}
