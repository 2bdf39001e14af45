// Command vss-server serves the Versioned Storage Service: the existing VSS HTTP API
// that deployed wallets call, and the same service over Connect, gRPC and gRPC-Web.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, log, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vss-server:", err)
		os.Exit(2)
	}
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("vss-server failed", "err", err)
		os.Exit(1)
	}
}

// parseConfig reads the configuration from flags, falling back to VSS_ environment
// variables and then to defaults.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (app.Config, *slog.Logger, error) {
	fs := flag.NewFlagSet("vss-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		if d, err := time.ParseDuration(getenv(name)); err == nil {
			return d
		}
		return def
	}
	var cfg app.Config
	fs.StringVar(&cfg.Listen, "listen", env("VSS_LISTEN", "127.0.0.1:8080"),
		"`address` to serve HTTP/1.1 and cleartext HTTP/2 on (env VSS_LISTEN)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", env("VSS_DATABASE_URL", ""),
		"`URL` of the database: postgres://user:pass@host:5432/db for PostgreSQL, "+app.MemoryURL+
			" for an in-memory store (tests only), empty for the embedded store in --data-dir (env VSS_DATABASE_URL)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("VSS_DATA_DIR", "data"),
		"`directory` of the embedded store, used when --database-url is empty (env VSS_DATA_DIR)")
	fs.StringVar(&cfg.Auth.Schemes, "auth", env("VSS_AUTH", ""),
		"authentication `schemes`, comma-separated: signature (per-request secp256k1 signatures), jwt (bearer tokens), "+
			"or none (one shared user; development only). Default: jwt when JWT keys or --lnurl-auth are configured, "+
			"signature otherwise (env VSS_AUTH)")
	fs.StringVar(&cfg.Auth.JWTPublicKeyFile, "jwt-public-key-file", env("VSS_JWT_PUBLIC_KEY_FILE", ""),
		"PEM `file` of public keys (RSA >= 2048 bits for RS256, P-256 for ES256, Ed25519 for EdDSA) whose JWTs are accepted; "+
			"PEM text can also come from env VSS_JWT_PUBLIC_KEY_PEM or VSS_JWT_RSA_PEM (env VSS_JWT_PUBLIC_KEY_FILE)")
	fs.StringVar(&cfg.Auth.JWKS, "jwks", env("VSS_JWKS", ""),
		"JWKS `file or URL` of an identity provider whose JWTs are accepted; URLs are refreshed periodically (env VSS_JWKS)")
	fs.DurationVar(&cfg.Auth.JWTLeeway, "jwt-leeway", envDuration("VSS_JWT_LEEWAY", 30*time.Second),
		"clock skew allowed when checking a JWT's exp, nbf and iat (env VSS_JWT_LEEWAY)")
	fs.BoolVar(&cfg.Auth.LNURLAuth, "lnurl-auth", env("VSS_LNURL_AUTH", "") == "true" || env("VSS_LNURL_AUTH", "") == "1",
		"serve the built-in LNURL-auth issuer of JWTs at /auth/lnurl (needs --public-url) (env VSS_LNURL_AUTH=true)")
	fs.StringVar(&cfg.Auth.PublicURL, "public-url", env("VSS_PUBLIC_URL", ""),
		"public base `URL` of this server as wallets reach it, e.g. https://vss.example.com; LNURLs are built from it (env VSS_PUBLIC_URL)")
	fs.DurationVar(&cfg.Auth.LNURLTokenTTL, "lnurl-token-ttl", envDuration("VSS_LNURL_TOKEN_TTL", 24*time.Hour),
		"lifetime of the JWTs the LNURL-auth issuer hands out (env VSS_LNURL_TOKEN_TTL)")
	maxBody := fs.String("max-body-bytes", env("VSS_MAX_BODY_BYTES", strconv.Itoa(server.DefaultMaxBodyBytes)),
		"largest request body in `bytes`; larger bodies get 413 (env VSS_MAX_BODY_BYTES)")
	corsOrigins := fs.String("cors-origins", env("VSS_CORS_ORIGINS", ""),
		"comma-separated web `origins` whose pages may call the server from the browser (Connect-Web), "+
			"e.g. https://wallet.example.com,https://*.example.org, or * for any; empty turns CORS off (env VSS_CORS_ORIGINS)")
	fs.BoolVar(&cfg.Explorer, "explorer", env("VSS_EXPLORER", "") == "true" || env("VSS_EXPLORER", "") == "1",
		"serve the store explorer web app at /explorer/ (env VSS_EXPLORER=true)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second,
		"how long in-flight requests may take to finish after SIGTERM or SIGINT")
	level := fs.String("log-level", env("VSS_LOG_LEVEL", "info"),
		"log `level`: debug (one line per request), info, warn or error (env VSS_LOG_LEVEL)")
	format := fs.String("log-format", env("VSS_LOG_FORMAT", "text"),
		"log `format`: text or json (env VSS_LOG_FORMAT)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vss-server [flags]\n\n"+
			"Serves the VSS HTTP API at /vss/ and the Connect/gRPC/gRPC-Web service vss.v1.VssService\n"+
			"on one port. Flags override the VSS_ environment variables named below.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg.Auth.JWTPublicKeyPEM = env("VSS_JWT_PUBLIC_KEY_PEM", getenv("VSS_JWT_RSA_PEM"))
	for _, o := range strings.Split(*corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.CORSOrigins = append(cfg.CORSOrigins, o)
		}
	}
	var err error
	if cfg.MaxBodyBytes, err = strconv.ParseInt(*maxBody, 10, 64); err != nil || cfg.MaxBodyBytes <= 0 {
		return cfg, nil, fmt.Errorf("--max-body-bytes: want a positive number of bytes, got %q", *maxBody)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return cfg, nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return cfg, nil, fmt.Errorf("--log-format: want text or json, got %q", *format)
	}
	return cfg, slog.New(h), nil
}
