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
	"github.com/govss/vss/internal/buildinfo"
	"github.com/govss/vss/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "admin" {
		os.Exit(runAdmin(ctx, os.Args[2:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(runHealthcheck(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if buildinfo.WantsVersion(os.Args[1:]) {
		fmt.Println(versionString())
		return
	}
	cfg, log, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	var help *helpRequest
	if errors.As(err, &help) {
		fmt.Print(help.text)
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vss-server:", err)
		fmt.Fprintln(os.Stderr, "Run 'vss-server --help' for the flags.")
		os.Exit(2)
	}
	cfg.Observability.Build = build()
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error("vss-server failed", "err", err)
		os.Exit(1)
	}
}

// helpRequest is the error parseConfig returns for --help (it wraps flag.ErrHelp): text
// is the help, which main prints to standard output.
type helpRequest struct{ text string }

func (h *helpRequest) Error() string { return "help requested" }
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// parseConfig reads the configuration from flags, falling back to VSS_ environment
// variables, then to the configuration file and then to defaults (see config.go).
// --help gives a *helpRequest; stderr receives nothing but the log, when no log file is
// configured.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (app.Config, *slog.Logger, error) {
	args, file, err := loadConfig(args, getenv)
	if err != nil {
		return app.Config{}, nil, err
	}
	getenv = file.getenv(getenv)
	fs := flag.NewFlagSet("vss-server", flag.ContinueOnError)
	// Parse errors are returned, and main prints them once; the help goes to stdout.
	fs.SetOutput(io.Discard)
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
	fs.BoolVar(&cfg.Auth.JWTPubkeySubjects, "auth-jwt-pubkey-subjects", env("VSS_AUTH_JWT_PUBKEY_SUBJECTS", "") == "true" || env("VSS_AUTH_JWT_PUBKEY_SUBJECTS", "") == "1",
		"trust the configured JWT issuers to put a secp256k1 public key (hex) in sub only after its holder proved it, "+
			"so such a token reaches the signature user of that key; without it such tokens are refused when "+
			"--auth includes signature or --lnurl-auth is on (env VSS_AUTH_JWT_PUBKEY_SUBJECTS=true)")
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
	explorerServers := fs.String("explorer-allowed-servers", env("VSS_EXPLORER_ALLOWED_SERVERS", ""),
		"comma-separated `origins` of other VSS servers the explorer page may call, e.g. https://vss2.example.com; "+
			"empty: only the server that serves it. Those servers need this one's origin in --cors-origins (env VSS_EXPLORER_ALLOWED_SERVERS)")
	fs.BoolVar(&cfg.GRPCReflection, "grpc-reflection", env("VSS_GRPC_REFLECTION", "") == "true" || env("VSS_GRPC_REFLECTION", "") == "1",
		"serve gRPC server reflection, which lets tools such as grpcurl discover the services; a debugging aid, off by default (env VSS_GRPC_REFLECTION=true)")
	quotaBytes := fs.String("quota-max-bytes", env("VSS_QUOTA_MAX_BYTES", "0"),
		"most `bytes` of keys and values each user may store, across all of its stores; 0 means no limit "+
			"(env VSS_QUOTA_MAX_BYTES; see README, Quotas and rate limits)")
	quotaKeys := fs.String("quota-max-keys", env("VSS_QUOTA_MAX_KEYS", "0"),
		"most `keys` each user may store, across all of its stores, global versions included; 0 means no limit (env VSS_QUOTA_MAX_KEYS)")
	rateLimit := fs.String("rate-limit", env("VSS_RATE_LIMIT", "0"),
		"sustained `requests per second` each user may make, per server instance (also each client address on /auth/lnurl); "+
			"over it: HTTP 429 / resource_exhausted with Retry-After; 0 means no limit (env VSS_RATE_LIMIT)")
	rateBurst := fs.String("rate-burst", env("VSS_RATE_BURST", "0"),
		"`requests` a user may make at once on top of --rate-limit; 0 means --rate-limit rounded up (env VSS_RATE_BURST)")
	groupCommit := fs.String("group-commit", env("VSS_GROUP_COMMIT", "on"),
		"on: concurrent writes of different requests share one database transaction and one commit (one flush to disk) "+
			"whenever they are ready at the same moment, with no added wait; each request keeps its own outcome. "+
			"off: every write commits on its own (env VSS_GROUP_COMMIT)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", envDuration("VSS_SHUTDOWN_TIMEOUT", 30*time.Second),
		"how long in-flight requests may take to finish after SIGTERM or SIGINT (env VSS_SHUTDOWN_TIMEOUT)")
	envInt := func(name string, def int) int {
		if n, err := strconv.Atoi(getenv(name)); err == nil {
			return n
		}
		return def
	}
	fs.DurationVar(&cfg.Feed.Retention, "feed-retention", envDuration("VSS_FEED_RETENTION", server.DefaultFeedRetention),
		"how long the change feed keeps changes; a client whose cursor is older must list its store again (env VSS_FEED_RETENTION)")
	fs.IntVar(&cfg.Feed.MaxStreamsPerUser, "watch-max-streams-per-user", envInt("VSS_WATCH_MAX_STREAMS_PER_USER", server.DefaultMaxStreamsPerUser),
		"most WatchChanges streams one user holds open at once, per server instance; -1 removes the cap (env VSS_WATCH_MAX_STREAMS_PER_USER)")
	fs.DurationVar(&cfg.Feed.Heartbeat, "watch-heartbeat", envDuration("VSS_WATCH_HEARTBEAT", server.DefaultWatchHeartbeat),
		"how often an idle WatchChanges stream sends a keep-alive carrying its cursor (env VSS_WATCH_HEARTBEAT)")
	fs.DurationVar(&cfg.Feed.SendTimeout, "watch-send-timeout", envDuration("VSS_WATCH_SEND_TIMEOUT", server.DefaultWatchSendTimeout),
		"longest time one WatchChanges message may take to be written before the stream is cut as a slow consumer (env VSS_WATCH_SEND_TIMEOUT)")
	fs.IntVar(&cfg.Database.MaxConns, "db-max-conns", envInt("VSS_DB_MAX_CONNS", 0),
		fmt.Sprintf("most PostgreSQL connections the server opens; 0 means %d. Each write holds one while its commit waits "+
			"for the disk, so size it for the commit latency, not for the cores; a pool_max_conns parameter in "+
			"--database-url wins (env VSS_DB_MAX_CONNS)", app.DefaultDBMaxConns))
	metricsOff := env("VSS_METRICS", "true")
	metrics := fs.Bool("metrics", metricsOff != "false" && metricsOff != "0",
		"serve Prometheus metrics at /metrics, without authentication (env VSS_METRICS=false turns them off)")
	fs.StringVar(&cfg.Observability.MetricsListen, "metrics-listen", env("VSS_METRICS_LISTEN", ""),
		"serve /metrics on this `address` (e.g. 127.0.0.1:9090) instead of the main port (env VSS_METRICS_LISTEN)")
	fs.DurationVar(&cfg.Limits.ReadHeaderTimeout, "read-header-timeout", envDuration("VSS_READ_HEADER_TIMEOUT", app.DefaultReadHeaderTimeout),
		"how long a client has to send a request's headers (env VSS_READ_HEADER_TIMEOUT)")
	fs.Int64Var(&cfg.Limits.BodyProgressBytes, "body-progress-bytes", int64(envInt("VSS_BODY_PROGRESS_BYTES", app.DefaultBodyProgressBytes)),
		"minimum upload rate, with --body-progress-timeout: a request body must advance by this many `bytes` "+
			"(or end) within every --body-progress-timeout, or the connection is closed (env VSS_BODY_PROGRESS_BYTES)")
	fs.DurationVar(&cfg.Limits.BodyProgressTimeout, "body-progress-timeout", envDuration("VSS_BODY_PROGRESS_TIMEOUT", app.DefaultBodyProgressTimeout),
		"see --body-progress-bytes; a negative duration turns the minimum upload rate off (env VSS_BODY_PROGRESS_TIMEOUT)")
	fs.DurationVar(&cfg.Limits.WriteTimeout, "write-timeout", envDuration("VSS_WRITE_TIMEOUT", app.DefaultWriteTimeout),
		"longest time from the end of a request to the end of its response (env VSS_WRITE_TIMEOUT)")
	fs.DurationVar(&cfg.Limits.IdleTimeout, "idle-timeout", envDuration("VSS_IDLE_TIMEOUT", app.DefaultIdleTimeout),
		"how long a keep-alive connection may wait for its next request (env VSS_IDLE_TIMEOUT)")
	fs.IntVar(&cfg.Limits.MaxHeaderBytes, "max-header-bytes", envInt("VSS_MAX_HEADER_BYTES", app.DefaultMaxHeaderBytes),
		"largest request header block in `bytes`; larger ones get 431 (env VSS_MAX_HEADER_BYTES)")
	fs.IntVar(&cfg.Limits.MaxConcurrent, "max-concurrent-requests", envInt("VSS_MAX_CONCURRENT_REQUESTS", app.DefaultMaxConcurrent),
		"most VSS calls served at once, taken after authentication; over it a call waits up to --queue-timeout, then gets 503 "+
			"with Retry-After (Connect/gRPC: unavailable); -1 removes the cap (env VSS_MAX_CONCURRENT_REQUESTS)")
	fs.IntVar(&cfg.Limits.MaxConcurrentPerUser, "max-concurrent-per-user", envInt("VSS_MAX_CONCURRENT_PER_USER", 0),
		"most of those slots one user holds at once (uploads included); over it a call gets 503 at once; "+
			"0 means --max-concurrent-requests/16 (at least 1), -1 no cap (env VSS_MAX_CONCURRENT_PER_USER)")
	fs.IntVar(&cfg.Limits.MaxConcurrentPublic, "max-concurrent-public", envInt("VSS_MAX_CONCURRENT_PUBLIC", app.DefaultMaxConcurrentPublic),
		"most requests served at once on the endpoints without credentials (gRPC health and reflection, LNURL-auth, /metrics, "+
			"/healthz, /readyz, the explorer), apart from the VSS calls' slots; -1 removes the cap (env VSS_MAX_CONCURRENT_PUBLIC)")
	fs.IntVar(&cfg.Limits.MaxConcurrentPerAddress, "max-concurrent-per-address", envInt("VSS_MAX_CONCURRENT_PER_ADDRESS", 0),
		"most of those public slots one client address (IPv6: /64) holds at once; 0 means --max-concurrent-public/4 "+
			"(at least 1), -1 no cap (env VSS_MAX_CONCURRENT_PER_ADDRESS)")
	fs.IntVar(&cfg.Limits.MaxConnections, "max-connections", envInt("VSS_MAX_CONNECTIONS", app.DefaultMaxConnections),
		"most open connections; one over it is closed at once; -1 removes the cap (env VSS_MAX_CONNECTIONS)")
	fs.IntVar(&cfg.Limits.MaxConnectionsPerAddress, "max-connections-per-address", envInt("VSS_MAX_CONNECTIONS_PER_ADDRESS", app.DefaultMaxConnectionsPerAddress),
		"most open connections from one client address (IPv6: /64); one over it is closed at once; -1 removes the cap "+
			"(env VSS_MAX_CONNECTIONS_PER_ADDRESS)")
	fs.Int64Var(&cfg.Limits.MaxUploadBytes, "max-upload-bytes", int64(envInt("VSS_MAX_UPLOAD_BYTES", server.DefaultMaxUploadBytes)),
		"most request-body `bytes` the VSS calls in flight hold in memory, across all users; a call whose body does not fit "+
			"gets 503 at once (Connect/gRPC: unavailable); -1 removes the cap (env VSS_MAX_UPLOAD_BYTES)")
	fs.Int64Var(&cfg.Limits.MaxUploadBytesPerUser, "max-upload-bytes-per-user", int64(envInt("VSS_MAX_UPLOAD_BYTES_PER_USER", 0)),
		"most of those `bytes` one user's calls hold at once; 0 means --max-upload-bytes/8 but at least --max-body-bytes, "+
			"-1 no cap (env VSS_MAX_UPLOAD_BYTES_PER_USER)")
	fs.DurationVar(&cfg.Limits.QueueTimeout, "queue-timeout", envDuration("VSS_QUEUE_TIMEOUT", server.DefaultQueueTimeout),
		"how long a request over --max-concurrent-requests or --max-concurrent-public waits for a slot before it is refused (env VSS_QUEUE_TIMEOUT)")
	level := fs.String("log-level", env("VSS_LOG_LEVEL", "info"),
		"log `level`: debug (one line per request), info, warn or error (env VSS_LOG_LEVEL)")
	format := fs.String("log-format", env("VSS_LOG_FORMAT", "text"),
		"log `format`: text or json (env VSS_LOG_FORMAT)")
	logFile := fs.String("log-file", env("VSS_LOG_FILE", ""),
		"append the log to this `file` instead of standard error; reopened on SIGHUP for log rotation (env VSS_LOG_FILE)")
	fs.String("config", "",
		"TOML configuration `file`: the reference VSS server's vss-server-config.toml, which may also be the first argument")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", env("VSS_TLS_CERT_FILE", ""),
		"serve HTTPS (HTTP/1.1 and HTTP/2) with the certificate chain in this PEM `file`; reloaded when it changes or on SIGHUP (env VSS_TLS_CERT_FILE)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", env("VSS_TLS_KEY_FILE", ""),
		"PEM `file` of the private key of --tls-cert-file (env VSS_TLS_KEY_FILE)")
	fs.Bool("version", false, "print the version, commit, build date and Go version, and exit")
	fs.Usage = func() {}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		var help strings.Builder
		writeHelp(&help, fs)
		return cfg, nil, &helpRequest{help.String()}
	} else if err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg.Auth.JWTPublicKeyPEM = env("VSS_JWT_PUBLIC_KEY_PEM", getenv("VSS_JWT_RSA_PEM"))
	cfg.CORSOrigins = splitList(*corsOrigins)
	cfg.ExplorerAllowedServers = splitList(*explorerServers)
	cfg.Observability.DisableMetrics = !*metrics
	switch *groupCommit {
	case "on", "true", "1":
	case "off", "false", "0":
		cfg.NoGroupCommit = true
	default:
		return cfg, nil, fmt.Errorf("--group-commit: want on or off, got %q", *groupCommit)
	}
	if err := parseLimitFlags(&cfg, *quotaBytes, *quotaKeys, *rateLimit, *rateBurst); err != nil {
		return cfg, nil, err
	}
	if cfg.MaxBodyBytes, err = strconv.ParseInt(*maxBody, 10, 64); err != nil || cfg.MaxBodyBytes <= 0 {
		return cfg, nil, fmt.Errorf("--max-body-bytes: want a positive number of bytes, got %q", *maxBody)
	}
	lvl, err := parseLogLevel(*level)
	if err != nil {
		return cfg, nil, fmt.Errorf("--log-level: %w", err)
	}
	if *format != "text" && *format != "json" {
		return cfg, nil, fmt.Errorf("--log-format: want text or json, got %q", *format)
	}
	out, err := openLog(*logFile, stderr)
	if err != nil {
		return cfg, nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(out, opts)
	if *format == "json" {
		h = slog.NewJSONHandler(out, opts)
	}
	log := slog.New(h)
	if err := file.apply(&cfg, log); err != nil {
		return cfg, nil, err
	}
	return cfg, log, nil
}

// splitList splits a comma-separated flag value, dropping spaces and empty items.
func splitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
