// Package app wires the VSS server together: it opens the configured store, builds the
// HTTP handler and serves it until its context ends, then shuts down gracefully.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// MemoryURL selects the in-memory store: nothing is written to disk and everything is
// gone when the server stops. It is meant for other projects' tests.
const MemoryURL = "memory:"

// Config is the server's configuration. The zero value is not usable: cmd/vss-server
// fills it from flags and VSS_ environment variables.
type Config struct {
	// Listen is the TCP address to serve on, e.g. 127.0.0.1:8080.
	Listen string
	// DatabaseURL selects the store: postgres:// or postgresql:// for PostgreSQL,
	// MemoryURL for the in-memory store, empty for the embedded store in DataDir.
	DatabaseURL string
	// DataDir holds the embedded store's files when DatabaseURL is empty.
	DataDir string
	// Auth configures authentication.
	Auth AuthConfig
	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64
	// ShutdownTimeout bounds how long in-flight requests may take to finish at shutdown.
	ShutdownTimeout time.Duration
	// CORSOrigins lists the web origins whose pages may call the server (Connect-Web
	// clients on other sites); "*" allows any. Empty turns CORS off.
	CORSOrigins []string
	// Explorer serves the store explorer web app at /explorer/.
	Explorer bool
	// ExplorerAllowedServers lists the origins of other VSS servers the explorer's page
	// may call (scheme://host[:port]); empty means only the server that serves it.
	ExplorerAllowedServers []string
	// GRPCReflection serves gRPC server reflection (for grpcurl and similar tools).
	GRPCReflection bool
	// Ready, if set, is called with the listening address once the server accepts
	// connections.
	Ready func(net.Addr)
	// Quota limits what each user may store; the zero value means no limit.
	Quota storage.Quota
	// RateLimit limits each user's requests; the zero value means no limit.
	RateLimit server.RateLimit
	// Observability configures the Prometheus metrics (see observability.go).
	Observability ObservabilityConfig
	// Limits bounds timeouts, header sizes and concurrent requests (see limits.go).
	Limits LimitsConfig
	// Database holds PostgreSQL settings beyond the URL: TLS roots, database creation.
	Database DatabaseOptions
	// NoGroupCommit turns off the group commit that lets concurrent writes share one
	// transaction and one commit, on every store (see postgres.WithGroupCommit and
	// sqlite.WithGroupCommit). The zero value is the default, group commit on, so that a
	// Config built in code runs what the binary runs.
	NoGroupCommit bool
	// Feed configures the change feed (retention, WatchChanges streams); zero fields
	// take the server package's defaults.
	Feed server.FeedOptions
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS (HTTP/1.1 and HTTP/2) with the
	// certificate and key in these PEM files, reloaded when they change or on SIGHUP.
	TLSCertFile, TLSKeyFile string
}

// Run serves VSS according to cfg until ctx is canceled, then stops accepting
// connections, lets in-flight requests finish and closes the store.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	pgOpts, err := cfg.Database.postgresOptions()
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLSConfig(ctx, cfg, log)
	if err != nil {
		return err
	}
	obs, err := newObservability(ctx, cfg.Observability)
	if err != nil {
		return err
	}
	defer obs.shutdown(log)
	store, desc, err := OpenStore(ctx, cfg.DatabaseURL, cfg.DataDir, !cfg.NoGroupCommit, log, append(pgOpts, obs.postgresOptions()...)...)
	if err != nil {
		return err
	}
	defer store.Close()
	log.Info("store opened", "store", desc)
	if err := applyQuota(ctx, store, cfg.Quota, log); err != nil {
		return err
	}
	if err := obs.watchStore(store); err != nil {
		return err
	}
	limits := cfg.Limits.withDefaults()
	authorizer, routes, err := setUpAuth(ctx, cfg.Auth, store, log)
	if err != nil {
		return err
	}

	if cfg.Explorer {
		if routes, err = withExplorer(routes, cfg.ExplorerAllowedServers); err != nil {
			return err
		}
	}
	routes = obs.routes(cfg.Observability, routes)
	var feed *server.Feed
	if fs, ok := store.(storage.Feed); ok {
		feed = server.NewFeed(fs, cfg.Feed, log)
		defer feed.Close()
		feedCtx, stopFeed := context.WithCancel(ctx)
		defer stopFeed()
		go feed.Run(feedCtx)
	}
	handler, err := server.New(server.Options{Store: store, Authorizer: authorizer, Logger: log, MaxBodyBytes: cfg.MaxBodyBytes, Routes: routes, RateLimit: cfg.RateLimit, Feed: feed,
		Metrics: obs.serverMetrics(), Interceptors: obs.interceptors, QueueTimeout: limits.QueueTimeout,
		MaxConcurrentRequests: max(limits.MaxConcurrent, 0), MaxConcurrentPerUser: limits.MaxConcurrentPerUser,
		MaxConcurrentPublic: max(limits.MaxConcurrentPublic, 0), MaxConcurrentPerAddress: limits.MaxConcurrentPerAddress,
		MaxUploadBytes: max(limits.MaxUploadBytes, 0), MaxUploadBytesPerUser: limits.MaxUploadBytesPerUser,
		GRPCReflection: cfg.GRPCReflection})
	if err != nil {
		return err
	}
	handler = withBodyProgress(obs.traceVSSHTTP(handler), limits, obs.bodyCut)
	if len(cfg.CORSOrigins) > 0 {
		if handler, err = withCORS(handler, cfg.CORSOrigins); err != nil {
			return err
		}
		log.Info("CORS enabled", "origins", cfg.CORSOrigins)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	ln = limitConns(ln, limits.MaxConnections, limits.MaxConnectionsPerAddress, log)
	srv := newHTTPServer(handler, log)
	applyLimits(srv, limits)
	if feed != nil {
		// Change streams never end on their own: end them, resumable, as shutdown starts.
		srv.RegisterOnShutdown(feed.Shutdown)
	}
	stopMetrics, err := obs.serveMetrics(cfg.Observability, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer stopMetrics()
	errc := make(chan error, 1)
	scheme := "http://"
	// The listeners let the protocol version header reach the responses Go's HTTP server
	// writes without a handler (protoheader.go).
	if tlsConfig != nil {
		scheme = "https://"
		tln := newTLSListener(ln, tlsConfig, limits.ReadHeaderTimeout, log)
		srv.TLSConfig = tln.config
		go func() { errc <- srv.Serve(tln) }()
	} else {
		go func() { errc <- srv.Serve(plainListener{ln}) }()
	}
	log.Info("serving VSS", "addr", ln.Addr().String(),
		"vss_http_api", scheme+ln.Addr().String()+"/vss",
		"connect", scheme+ln.Addr().String()+"/vss.v1.VssService/")
	if cfg.Explorer {
		log.Info("serving the store explorer", "url", scheme+ln.Addr().String()+"/explorer/",
			"allowed_servers", cfg.ExplorerAllowedServers)
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// newHTTPServer returns the HTTP server for handler: HTTP/1.1 and HTTP/2 (cleartext
// for gRPC, or over TLS) on one port, with timeouts that drop idle and stalled clients
// but leave a slow mobile link minutes to upload a multi-megabyte value.
func newHTTPServer(handler http.Handler, log *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	return &http.Server{
		Handler:     trackHandlers(handler),
		ConnContext: connContext,
		Protocols:   &protocols,
		// Timeouts and the header limit are set by applyLimits (limits.go).
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// OpenConfiguredStore opens the store cfg selects with all of cfg's database settings
// (TLS roots, database creation), as Run does, and extra options for a PostgreSQL store;
// the admin commands use it through OpenExistingStore.
func OpenConfiguredStore(ctx context.Context, cfg Config, log *slog.Logger, extra ...postgres.Option) (storage.Store, string, error) {
	pgOpts, err := cfg.Database.postgresOptions()
	if err != nil {
		return nil, "", err
	}
	return OpenStore(ctx, cfg.DatabaseURL, cfg.DataDir, !cfg.NoGroupCommit, log, append(pgOpts, extra...)...)
}

// OpenStore opens the store that databaseURL selects and describes it for the log.
// groupCommit turns the group commit of concurrent writes on or off; pgOpts apply to a
// PostgreSQL store.
func OpenStore(ctx context.Context, databaseURL, dataDir string, groupCommit bool, log *slog.Logger, pgOpts ...postgres.Option) (storage.Store, string, error) {
	switch {
	case databaseURL == MemoryURL:
		s, err := sqlite.OpenMemory(ctx, sqlite.WithGroupCommit(groupCommit))
		return s, "in-memory (data is lost when the server stops)", err
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		s, err := postgres.Open(ctx, databaseURL, append([]postgres.Option{postgres.WithLogger(log), postgres.WithGroupCommit(groupCommit)}, pgOpts...)...)
		if err != nil {
			return nil, "", fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return s, "postgresql", nil
	case databaseURL == "":
		if dataDir == "" {
			return nil, "", errors.New("no database URL and no data directory: set --database-url or --data-dir")
		}
		path := filepath.Join(dataDir, "vss.db")
		s, err := sqlite.Open(ctx, path, sqlite.WithGroupCommit(groupCommit))
		if err != nil {
			return nil, "", fmt.Errorf("open embedded store %s: %w", path, err)
		}
		return s, "embedded " + path, nil
	default:
		return nil, "", fmt.Errorf("unsupported database URL %q: use postgres://…, %s, or leave it empty for the embedded store", redact(databaseURL), MemoryURL)
	}
}

// redact hides everything after the scheme of a URL that may carry a password.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		return u[:i+3] + "…"
	}
	return u
}
