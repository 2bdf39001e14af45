package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govss/vss/internal/buildinfo"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
)

// MetricsPath is where Prometheus metrics are served, without authentication.
const MetricsPath = "/metrics"

// ObservabilityConfig configures metrics. Tracing is configured only through the
// standard OTEL_ environment variables (see tracing).
type ObservabilityConfig struct {
	// DisableMetrics turns the Prometheus metrics off.
	DisableMetrics bool
	// MetricsListen, if set, serves /metrics on this address (e.g. 127.0.0.1:9090)
	// instead of the main port, for operators who do not want metrics public.
	MetricsListen string
	// Build is what the binary was built from, exported as vss_build_info; the zero
	// value means Go's own build information (buildinfo.Read with nothing set at link
	// time).
	Build buildinfo.Info
}

// MetricBuildInfo is the gauge that says, with value 1, which build serves: its labels
// are version, commit and goversion.
const MetricBuildInfo = "vss_build_info"

// observability holds the metrics and the tracing of one running server. Its metrics
// fields are nil when metrics are off, tracing is nil when tracing is off.
type observability struct {
	registry *prometheus.Registry
	metrics  *server.Metrics
	bodyCuts prometheus.Counter
	tracing  *tracing
	// interceptors trace Connect calls.
	interceptors []connect.Interceptor
}

// newObservability sets up metrics as cfg says and tracing as the OTEL_ environment
// variables say.
func newObservability(ctx context.Context, cfg ObservabilityConfig) (*observability, error) {
	tr, err := newTracing(ctx, os.Getenv)
	if err != nil {
		return nil, err
	}
	ics, err := tr.interceptors()
	if err != nil {
		return nil, err
	}
	o := &observability{tracing: tr, interceptors: ics}
	if cfg.DisableMetrics {
		return o, nil
	}
	if err := o.newMetrics(cfg.Build); err != nil {
		return nil, err
	}
	return o, nil
}

// shutdown exports the spans not yet sent, waiting at most a few seconds.
func (o *observability) shutdown(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.tracing.shutdown(ctx); err != nil {
		log.Warn("exporting the last spans failed", "err", err)
	}
}

// postgresOptions adds tracing to the PostgreSQL store.
func (o *observability) postgresOptions() []postgres.Option { return o.tracing.postgresOptions() }

// traceVSSHTTP adds spans for the VSS HTTP API.
func (o *observability) traceVSSHTTP(h http.Handler) http.Handler { return o.tracing.wrap(h) }

// newMetrics creates the server's metrics in a registry of its own, with the Go runtime
// and process collectors and the build's vss_build_info.
func (o *observability) newMetrics(build buildinfo.Info) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	m, err := server.NewMetrics(reg)
	if err != nil {
		return err
	}
	cuts := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vss_body_progress_cutoffs_total",
		Help: "Request bodies cut off because they arrived slower than the minimum transfer rate.",
	})
	if err := reg.Register(cuts); err != nil {
		return err
	}
	if build == (buildinfo.Info{}) {
		build = buildinfo.Read("", "", "")
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        MetricBuildInfo,
		Help:        "Always 1; its labels say which build of vss-server serves (version, commit, Go version).",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "goversion": build.GoVersion},
	})
	info.Set(1)
	if err := reg.Register(info); err != nil {
		return err
	}
	o.registry, o.metrics, o.bodyCuts = reg, m, cuts
	return nil
}

// serverMetrics returns the metrics to record requests in; nil when metrics are off.
func (o *observability) serverMetrics() *server.Metrics { return o.metrics }

// bodyCut counts a request body cut off for being too slow.
func (o *observability) bodyCut() {
	if o.bodyCuts != nil {
		o.bodyCuts.Inc()
	}
}

// watchStore reports the store's connection pool statistics and what it saw of its
// database (connection errors, changes of primary, time unavailable), read at scrape
// time, when the store has them (PostgreSQL). The embedded store reports nothing.
func (o *observability) watchStore(store storage.Store) error {
	if o.registry == nil {
		return nil
	}
	if p, ok := store.(interface{ PoolStats() postgres.PoolStats }); ok {
		if err := o.registry.Register(newPoolCollector(p.PoolStats)); err != nil {
			return err
		}
	}
	if h, ok := store.(storage.HealthReporter); ok {
		return o.registry.Register(newHealthCollector(h.DatabaseHealth))
	}
	return nil
}

// handler serves the metrics in the Prometheus text (or OpenMetrics) format.
func (o *observability) handler() http.Handler {
	// A scrape gathers every metric: a few at once are plenty, more are answered 503 at
	// once rather than piling up (the main port's public budget bounds them further).
	return promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{Registry: o.registry, EnableOpenMetrics: true, MaxRequestsInFlight: MaxScrapesInFlight})
}

// routes adds GET /metrics to the main port, unless metrics are off or served on their
// own address.
func (o *observability) routes(cfg ObservabilityConfig, routes func(*http.ServeMux)) func(*http.ServeMux) {
	if o.registry == nil || cfg.MetricsListen != "" {
		return routes
	}
	return func(mux *http.ServeMux) {
		if routes != nil {
			routes(mux)
		}
		mux.Handle("GET "+MetricsPath, o.handler())
	}
}

// Limits of the metrics endpoints.
const (
	// MaxScrapesInFlight is how many scrapes of /metrics run at once.
	MaxScrapesInFlight = 4
	// MetricsMaxConnections caps the open connections of --metrics-listen, a quarter of
	// them from one address.
	MetricsMaxConnections = 64
)

// serveMetrics serves /metrics on cfg.MetricsListen until ctx ends, when that is set.
// The returned function stops it.
func (o *observability) serveMetrics(cfg ObservabilityConfig, log *slog.Logger) (stop func(), err error) {
	if o.registry == nil || cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", cfg.MetricsListen, err)
	}
	// Scrapers are few: a small number of connections is plenty, and bounds what a
	// flood at this address can hold.
	ln = limitConns(ln, MetricsMaxConnections, MetricsMaxConnections/4, log)
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, o.handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		WriteTimeout:      time.Minute,
		IdleTimeout:       DefaultIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server failed", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+MetricsPath)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// poolCollector exposes the PostgreSQL connection pool's statistics, read when metrics
// are scraped.
type poolCollector struct {
	stats                           func() postgres.PoolStats
	acquired, idle, total, maxConns *prometheus.Desc
	acquires, acquireSeconds        *prometheus.Desc
	emptyAcquires, canceledAcquires *prometheus.Desc
}

func newPoolCollector(stats func() postgres.PoolStats) *poolCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &poolCollector{
		stats:            stats,
		acquired:         d("vss_db_pool_acquired_connections", "Database connections in use now."),
		idle:             d("vss_db_pool_idle_connections", "Idle database connections now."),
		total:            d("vss_db_pool_total_connections", "Open database connections now (in use, idle and being opened)."),
		maxConns:         d("vss_db_pool_max_connections", "Maximum size of the database connection pool."),
		acquires:         d("vss_db_pool_acquires_total", "Connections acquired from the pool."),
		acquireSeconds:   d("vss_db_pool_acquire_duration_seconds_total", "Total time spent waiting to acquire connections from the pool."),
		emptyAcquires:    d("vss_db_pool_empty_acquires_total", "Acquisitions that waited because no connection was idle: the pool is too small for the load."),
		canceledAcquires: d("vss_db_pool_canceled_acquires_total", "Acquisitions abandoned because the request ended while waiting."),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.maxConns, c.acquires, c.acquireSeconds, c.emptyAcquires, c.canceledAcquires} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, float64(s.AcquiredConns))
	gauge(c.idle, float64(s.IdleConns))
	gauge(c.total, float64(s.TotalConns))
	gauge(c.maxConns, float64(s.MaxConns))
	counter(c.acquires, float64(s.AcquireCount))
	counter(c.acquireSeconds, s.AcquireDuration.Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount))
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount))
}

// The metrics of the database's availability, as a store that follows its connections
// sees it (storage.DatabaseHealth).
const (
	MetricDBUp                 = "vss_db_up"
	MetricDBConnectionErrors   = "vss_db_connection_errors_total"
	MetricDBPrimaryChanges     = "vss_db_primary_changes_total"
	MetricDBUnavailableSeconds = "vss_db_unavailable_seconds_total"
)

// healthCollector exposes storage.DatabaseHealth, read when metrics are scraped.
type healthCollector struct {
	health                                      func() storage.DatabaseHealth
	up, connErrors, primaryChanges, unavailable *prometheus.Desc
}

func newHealthCollector(health func() storage.DatabaseHealth) *healthCollector {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &healthCollector{
		health:         health,
		up:             d(MetricDBUp, "1 while the database answers, 0 from a connection error until the next call that succeeds."),
		connErrors:     d(MetricDBConnectionErrors, "Database calls that could not reach the database: failed connects, connections lost mid-call, a standby where the primary was expected."),
		primaryChanges: d(MetricDBPrimaryChanges, "Times a new database connection reached another primary than the one before (another server, or the same one restarted): the failovers, switchovers and restarts this instance saw."),
		unavailable:    d(MetricDBUnavailableSeconds, "Time in all during which the database could not be reached, from a connection error to the next call that succeeded."),
	}
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.connErrors, c.primaryChanges, c.unavailable} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.health()
	up := 1.0
	if !h.UnavailableSince.IsZero() {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.connErrors, prometheus.CounterValue, float64(h.ConnectionErrors))
	ch <- prometheus.MustNewConstMetric(c.primaryChanges, prometheus.CounterValue, float64(h.PrimaryChanges))
	ch <- prometheus.MustNewConstMetric(c.unavailable, prometheus.CounterValue, h.Unavailable.Seconds())
}
