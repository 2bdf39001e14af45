// Package bench is the load generator behind cmd/vss-bench: closed-loop simulated
// wallets against a VSS server through its bindings, and the same load straight
// against the store package (storage/postgres or storage/sqlite, in process)
// to measure how close the server gets to its database's own limit.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
	"github.com/govss/vss/storage/sqlite"
)

// Config is one benchmark run.
type Config struct {
	// Target, when set, is the VSS HTTP base URL of an external server (e.g.
	// http://127.0.0.1:8080/vss); only the vss-http binding runs, and nothing direct,
	// unless SideBySide.
	Target string
	// TargetName labels the external server's results; default "external".
	TargetName string
	// ServerPID, with Target, is the external server's process, for CPU and RSS.
	ServerPID int
	// TargetDBPID, with Target, is the postmaster of the external server's PostgreSQL,
	// for the database's CPU (postmaster and backends).
	TargetDBPID int
	// TargetDBURL, with Target, is a URL of the external server's database, for its WAL
	// flushes (pg_stat_wal) and for ANALYZE after seeding.
	TargetDBURL string
	// SideBySide, with Target, also starts this repository's server (on each of
	// Stores) and runs every vss-http cell on both servers, one after the other, so the
	// two land in the same tables measured under the same conditions.
	SideBySide bool
	// CPUOnly runs the throwaway PostgreSQL with fsync, synchronous_commit and
	// full_page_writes off: commits do not wait for the disk, so the run shows the CPU
	// cost alone. Otherwise PostgreSQL runs with production durability.
	CPUOnly bool
	// PostgresURL, when set, is the administrative URL of a running PostgreSQL to
	// create the benchmark's databases in (vss_bench_server, vss_bench_direct, dropped
	// first if they exist) instead of starting a throwaway cluster; PostgresPID is its
	// postmaster, for the database's CPU.
	PostgresURL string
	PostgresPID int
	// ServerBin is the vss-server binary to start when Target is empty.
	ServerBin string
	// ServerArgs are extra arguments for every server the benchmark starts (flags such
	// as --max-concurrent-per-user=-1, to measure what a setting costs).
	ServerArgs []string
	// Stores are the stores to start the server on: postgres, sqlite.
	Stores []string
	// Bindings are vss-http, connect and/or connect-encrypted (Connect through the Go
	// client's encryption layer, client/encrypted).
	Bindings []string
	// Scenarios names the scenarios to run; empty: all.
	Scenarios []string
	// Concurrency levels; each runs with that many wallets.
	Concurrency []int
	// Direct runs the direct store limit next to the server.
	Direct bool
	// DirectSolo also runs the store directly with group commit off (binding
	// direct-solo): each request in a transaction of its own, as a client sending the
	// same statements straight to the database would.
	DirectSolo bool
	Warmup     time.Duration
	Duration   time.Duration
	Sizes      Sizes
	// Memory runs the memory probes (large put peak RSS, idle connections) on a fresh
	// server before the scenarios.
	Memory    bool
	IdleConns int
	// FeedWallets, when positive, measures the change feed's notification latency with
	// that many wallets (a writer and a watcher each) for FeedDuration, after the
	// scenarios; on PostgreSQL the writer and the watcher use two server instances.
	FeedWallets  int
	FeedDuration time.Duration
	// TransferMB, when positive, measures the export and import of one user holding
	// that many MiB of values (ExportData, then ImportData of the dump for another
	// user) on a fresh server, after the scenarios: MB/s and the raise of the server's
	// peak RSS.
	TransferMB int
	// CPUProfile, when set, runs the server inside this process instead of starting
	// ServerBin, and writes a CPU profile of the server runs (bindings only, not the
	// direct runs) to CPUProfile-<store>.pprof. Server CPU and RSS are then unknown.
	CPUProfile string
	// Out receives the tables and progress; Log the servers' logs.
	Out io.Writer
	Log io.Writer
}

// Report is everything a run measured; it is what --json saves and --plot reads.
type Report struct {
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	Args    []string  `json:"args"`
	// Postgres describes each PostgreSQL server of the run and its durability settings.
	Postgres []string      `json:"postgres,omitempty"`
	Results  []Result      `json:"results"`
	Memory   []Memory      `json:"memory"`
	Feed     []FeedLatency `json:"feed,omitempty"`
	Transfer []Transfer    `json:"transfer,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func (cfg *Config) scenarios() ([]*Scenario, error) {
	if len(cfg.Scenarios) == 0 {
		return Scenarios, nil
	}
	var out []*Scenario
	for _, name := range cfg.Scenarios {
		i := slices.IndexFunc(Scenarios, func(s *Scenario) bool { return s.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
		out = append(out, Scenarios[i])
	}
	return out, nil
}

// Run runs the benchmark and returns its report; it prints each result as it comes.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	scs, err := cfg.scenarios()
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	rep := &Report{Machine: machine(), Started: time.Now().UTC()}
	tw := newTable(cfg.Out)
	emit := func(r Result) {
		rep.Results = append(rep.Results, r)
		tw.row(r)
	}
	var ext *target
	if cfg.Target != "" {
		if ext, err = externalTarget(ctx, cfg, rep); err != nil {
			return rep, err
		}
		defer ext.wal.close()
		if !cfg.SideBySide {
			err := runTarget(ctx, cfg, scs, ext, []string{"vss-http"}, emit)
			tw.flush()
			return rep, err
		}
	}
	for _, store := range cfg.Stores {
		if err := runStore(ctx, cfg, scs, store, ext, rep, emit); err != nil {
			tw.flush()
			return rep, fmt.Errorf("%s: %w", store, err)
		}
	}
	computeEfficiency(rep.Results)
	tw.flush()
	fmt.Fprintln(cfg.Out)
	printSummary(cfg.Out, rep)
	printTargets(cfg.Out, rep)
	return rep, nil
}

// externalTarget is the server of cfg.Target. Its results are labelled with
// cfg.TargetName and, side by side, filed under the store of our server they run next to.
func externalTarget(ctx context.Context, cfg Config, rep *Report) (*target, error) {
	name := cfg.TargetName
	if name == "" {
		name = "external"
	}
	t := &target{store: "external", server: name, serverPID: cfg.ServerPID, dbPID: cfg.TargetDBPID,
		root: strings.TrimSuffix(cfg.Target, "/")}
	t.bindings = map[string]func(*counters, int) client{
		"vss-http": func(c *counters, n int) client { return &vssHTTP{base: t.root, hc: newHTTPClient(n, c)} },
	}
	if cfg.TargetDBURL != "" {
		desc, err := describePostgres(ctx, cfg.TargetDBURL)
		if err != nil {
			return nil, fmt.Errorf("--target-db-url: %w", err)
		}
		rep.Postgres = append(rep.Postgres, name+": "+desc)
		fmt.Fprintf(cfg.Out, "# %s's database: %s\n", name, desc)
		if t.wal, err = openWALProbe(ctx, cfg.TargetDBURL); err != nil {
			return nil, fmt.Errorf("--target-db-url: %w", err)
		}
		t.analyze = func(ctx context.Context) error { return analyzeDatabase(ctx, cfg.TargetDBURL) }
	}
	return t, nil
}

// target is something to load: a server's bindings, or a direct store.
type target struct {
	store     string
	server    string // a server that is not ours: its name; "" for ours and direct
	root      string
	serverPID int
	dbPID     int // PostgreSQL's postmaster, 0 when not ours
	bindings  map[string]func(c *counters, conns int) client
	// trips are the same bindings through the counting proxy, for the round-trip pass
	// after each cell; nil when there is no proxy.
	trips map[string]func(c *counters, conns int) client
	proxy *rtProxy
	wal   *walProbe // nil: no WAL statistics
	// analyze, when set, refreshes the database's planner statistics.
	analyze func(context.Context) error
	// others are servers that run every vss-http cell right after (or before) this
	// one: an external server measured side by side with ours.
	others []*target
}

func runStore(ctx context.Context, cfg Config, scs []*Scenario, store string, ext *target, rep *Report, emit func(Result)) error {
	tmp, err := os.MkdirTemp("", "vss-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var (
		serverURL  string // empty: embedded store
		proxiedURL string // the server's database through the counting proxy
		proxy      *rtProxy
		dbPID      int
		wal        *walProbe
		openDirect func(proxied, solo bool) (storage.Store, error)
		analyze    func(context.Context) error
	)
	switch store {
	case "postgres":
		admin := cfg.PostgresURL
		dbPID = cfg.PostgresPID
		if admin == "" {
			if cfg.CPUOnly {
				fmt.Fprintln(cfg.Out, "# starting a throwaway PostgreSQL cluster with fsync, synchronous_commit and full_page_writes OFF: a CPU-only view, commits do not wait for the disk")
			} else {
				fmt.Fprintln(cfg.Out, "# starting a throwaway PostgreSQL cluster with production durability (fsync, synchronous_commit, full_page_writes on)")
			}
			var stopPG func()
			if admin, stopPG, err = pgtest.StartClusterWith(pgtest.ClusterOptions{Durable: !cfg.CPUOnly}); err != nil {
				return err
			}
			defer stopPG()
			dbPID = childPID("postgres")
		}
		desc, err := describePostgres(ctx, admin)
		if err != nil {
			return err
		}
		rep.Postgres = append(rep.Postgres, "ours: "+desc)
		fmt.Fprintf(cfg.Out, "# %s\n", desc)
		if wal, err = openWALProbe(ctx, admin); err != nil {
			return err
		}
		defer wal.close()
		u, err := url.Parse(admin)
		if err != nil {
			return err
		}
		if proxy, err = newProxy(u.Host); err != nil {
			return err
		}
		defer proxy.close()
		if err := createDatabases(ctx, admin, "vss_bench_server", "vss_bench_direct"); err != nil {
			return err
		}
		// The measured runs connect to PostgreSQL straight; the counting proxy costs a
		// loopback hop per round trip, so round trips are counted in a short pass of
		// their own through it, on the same database.
		dbURL := func(db string, proxied bool) string {
			v := *u
			if proxied {
				v.Host = proxy.addr()
			}
			v.Path = "/" + db
			return v.String()
		}
		serverURL, proxiedURL = dbURL("vss_bench_server", false), dbURL("vss_bench_server", true)
		analyze = func(ctx context.Context) error {
			for _, db := range []string{"vss_bench_server", "vss_bench_direct"} {
				if err := analyzeDatabase(ctx, dbURL(db, false)); err != nil {
					return err
				}
			}
			return nil
		}
		openDirect = func(proxied, solo bool) (storage.Store, error) {
			// The store package itself: the exact queries the server runs, over the same
			// pool configuration, with no HTTP, protobuf or authentication in between.
			return postgres.Open(ctx, dbURL("vss_bench_direct", proxied), postgres.WithLogger(slog.New(slog.DiscardHandler)), postgres.WithGroupCommit(!solo))
		}
	case "sqlite":
		openDirect = func(_, solo bool) (storage.Store, error) {
			return sqlite.Open(ctx, filepath.Join(tmp, "direct", "vss.sqlite"), sqlite.WithGroupCommit(!solo))
		}
	default:
		return fmt.Errorf("unknown store %q (want postgres or sqlite)", store)
	}
	start := func() (*child, error) {
		if cfg.CPUProfile != "" {
			return startInProcess(ctx, serverURL, filepath.Join(tmp, "server"), cfg.Log)
		}
		return startServer(ctx, cfg.ServerBin, cfg.ServerArgs, serverURL, filepath.Join(tmp, "server"), cfg.Log)
	}
	// A second server on the same database through the proxy, for the round-trip
	// passes (not when profiling: the profile is of the measured runs).
	var proxied *child
	if proxy != nil && cfg.CPUProfile == "" {
		if proxied, err = startServer(ctx, cfg.ServerBin, cfg.ServerArgs, proxiedURL, "", cfg.Log); err != nil {
			return err
		}
		defer func() { proxied.stop() }()
	}

	srv, err := start()
	if err != nil {
		return err
	}
	defer func() { srv.stop() }()
	if cfg.Memory {
		ws, err := newWallets(1)
		if err != nil {
			return err
		}
		m, err := probeMemory(ctx, store, srv, ws[0], cfg.Sizes.Large, cfg.IdleConns)
		if err != nil {
			return fmt.Errorf("memory probe: %w", err)
		}
		rep.Memory = append(rep.Memory, m)
		printMemory(cfg.Out, m)
		// The scenarios run on a fresh server, without the probes' connections.
		srv.stop()
		if srv, err = start(); err != nil {
			return err
		}
	}

	t := &target{store: store, root: srv.root, serverPID: srv.pid(), dbPID: dbPID, proxy: proxy, wal: wal, analyze: analyze}
	if ext != nil {
		side := *ext
		side.store = store // one table: the external server's rows next to ours
		t.others = []*target{&side}
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile + "-" + store + ".pprof")
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		fmt.Fprintf(cfg.Out, "# CPU profile of the in-process server: %s\n", f.Name())
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	t.bindings = serverBindings(t.root)
	if proxied != nil {
		t.trips = serverBindings(proxied.root)
	}
	if err := runTarget(ctx, cfg, scs, t, cfg.Bindings, emit); err != nil {
		return err
	}
	if cfg.FeedWallets > 0 {
		f, err := feedLatency(ctx, cfg, store, srv, serverURL)
		if err != nil {
			return fmt.Errorf("feed latency: %w", err)
		}
		rep.Feed = append(rep.Feed, f)
		printFeed(cfg.Out, f)
	}
	if cfg.TransferMB > 0 && srv.pid() != 0 {
		// On a fresh server, so that the peak RSS is the transfer's.
		srv.stop()
		if srv, err = start(); err != nil {
			return err
		}
		x, err := measureTransfer(ctx, store, srv, int64(cfg.TransferMB)<<20, tmp)
		if err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		rep.Transfer = append(rep.Transfer, x)
		printTransfer(cfg.Out, x)
	}
	if !cfg.Direct {
		return nil
	}
	// Stop the servers so that they take no CPU from the direct run.
	srv.stop()
	if proxied != nil {
		proxied.stop()
	}
	if cfg.CPUProfile != "" {
		pprof.StopCPUProfile() // the profile is of the server runs only
	}
	d := &target{store: store, dbPID: dbPID, proxy: proxy, wal: wal, analyze: analyze,
		bindings: map[string]func(*counters, int) client{}}
	if proxy != nil {
		d.trips = map[string]func(*counters, int) client{}
	}
	// The store as the server runs it, and with --direct-solo as a naive client would
	// (group commit off); each also through the counting proxy for the round trips.
	type variant struct {
		binding string
		solo    bool
	}
	variants := []variant{{"direct", false}}
	if cfg.DirectSolo {
		variants = append(variants, variant{"direct-solo", true})
	}
	var directBindings []string
	for _, v := range variants {
		for _, counted := range []bool{false, true} {
			if counted && proxy == nil {
				continue
			}
			s, err := openDirect(counted, v.solo)
			if err != nil {
				return err
			}
			defer s.Close()
			mk := func(*counters, int) client { return &direct{s: s} }
			if counted {
				d.trips[v.binding] = mk
			} else {
				d.bindings[v.binding] = mk
			}
		}
		directBindings = append(directBindings, v.binding)
	}
	return runTarget(ctx, cfg, scs, d, directBindings, emit)
}

// serverBindings are the clients of the server at root, by binding.
func serverBindings(root string) map[string]func(*counters, int) client {
	return map[string]func(*counters, int) client{
		"vss-http": func(c *counters, n int) client { return &vssHTTP{base: root + "/vss", hc: newHTTPClient(n, c)} },
		"connect":  func(c *counters, n int) client { return newConnect(root, newHTTPClient(n, c)) },
		// The same Connect calls through the Go client's encryption layer (--encrypt).
		encryptedBinding: func(c *counters, n int) client { return newEncrypted(root, newHTTPClient(n, c)) },
	}
}

// runTarget runs every scenario at every concurrency through each binding of t, and
// each vss-http cell on t's other servers too, alternating which goes first.
func runTarget(ctx context.Context, cfg Config, scs []*Scenario, t *target, bindings []string, emit func(Result)) error {
	maxConc := slices.Max(cfg.Concurrency)
	ws, err := newWallets(maxConc)
	if err != nil {
		return err
	}
	cellNo := 0
	for _, sc := range scs {
		levels := cfg.Concurrency
		if sc.MaxConc > 0 {
			levels = slices.DeleteFunc(slices.Clone(levels), func(n int) bool { return n > sc.MaxConc })
		}
		if len(levels) == 0 {
			continue
		}
		for i, x := range append([]*target{t}, t.others...) {
			seeders := seedBindings(bindings)
			if i > 0 {
				seeders = []string{"vss-http"}
			}
			for _, b := range seeders {
				if err := prepare(ctx, cfg, sc, x, b, ws[:slices.Max(levels)]); err != nil {
					return err
				}
			}
		}
		for _, n := range levels {
			for _, b := range bindings {
				if _, ok := t.bindings[b]; !ok {
					return fmt.Errorf("unknown binding %q", b)
				}
				xs := []*target{t}
				if b == "vss-http" {
					xs = append(xs, t.others...)
				}
				if cellNo++; cellNo%2 == 0 {
					slices.Reverse(xs)
				}
				for _, x := range xs {
					if err := ctx.Err(); err != nil {
						return err
					}
					emit(runOne(ctx, cfg, sc, x, b, ws[:n]))
				}
			}
		}
	}
	return nil
}

// seedBindings are the bindings that seed the data of seeded scenarios: the first of
// bindings that stores plaintext, and the encrypted binding, which reads a store it
// seeded itself (sealed with its keys), when it runs.
func seedBindings(bindings []string) []string {
	var out []string
	if i := slices.IndexFunc(bindings, func(b string) bool { return !isEncrypted(b) }); i >= 0 {
		out = append(out, bindings[i])
	}
	if slices.ContainsFunc(bindings, isEncrypted) {
		out = append(out, encryptedBinding)
	}
	return out
}

// prepare seeds sc's data on t through binding b for ws, when sc reads seeded data, and
// refreshes the planner statistics of t's database.
func prepare(ctx context.Context, cfg Config, sc *Scenario, t *target, b string, ws []*wallet) error {
	if sc.seed != nil {
		c := t.bindings[b](&counters{}, 8)
		t0 := time.Now()
		if err := seedAll(ctx, sc, c, ws, seededStoreID(sc, b), cfg.Sizes); err != nil {
			return fmt.Errorf("seed %s on %s: %w", sc.Name, t.name(), err)
		}
		closeIdle(c)
		fmt.Fprintf(cfg.Out, "# seeded %s for %d wallets on %s/%s in %.1fs\n", sc.Name, len(ws), t.name(), b, time.Since(t0).Seconds())
	}
	if t.analyze != nil {
		// A production database has planner statistics (autovacuum gathers them
		// within a minute of a change); a benchmark database seeded a moment ago
		// has none, and plans made without them can scan a whole store.
		if err := t.analyze(ctx); err != nil {
			return fmt.Errorf("analyze: %w", err)
		}
	}
	return nil
}

func (t *target) name() string {
	if t.server != "" {
		return t.server
	}
	return t.store
}

// runOne runs one cell: sc with one wallet per element of ws, through binding b of t,
// then, when t has a counting proxy, its round-trip pass.
func runOne(ctx context.Context, cfg Config, sc *Scenario, t *target, b string, ws []*wallet) Result {
	n := len(ws)
	cnt := &counters{}
	c := t.bindings[b](cnt, n)
	storeID := seededStoreID(sc, b)
	if sc.seed == nil {
		storeID = fmt.Sprintf("%s-%s-%d", sc.Name, b, n)
	}
	r := runCell(ctx, sc, c, ws, storeID, cfg.Sizes, cfg.Warmup, cfg.Duration,
		probes{serverPID: t.serverPID, dbPID: t.dbPID, bytes: cnt, wal: t.wal})
	closeIdle(c)
	if mk, ok := t.trips[b]; ok {
		// The round-trip pass: the same load through the counting proxy.
		tc := mk(&counters{}, n)
		if sc.seed == nil {
			storeID += "-trips"
		}
		tr := runCell(ctx, sc, tc, ws, storeID, cfg.Sizes, tripWarmup, min(cfg.Duration, tripWindow), probes{proxy: t.proxy})
		closeIdle(tc)
		r.DBTripsPerOp = tr.DBTripsPerOp
		if isDirect(b) { // the bytes moved are the database's
			r.InKBPerOp, r.OutKBPerOp = tr.InKBPerOp, tr.OutKBPerOp
		}
	}
	if isDirect(b) && t.trips == nil {
		r.InKBPerOp, r.OutKBPerOp = -1, -1 // in process: no bytes move
	}
	r.Binding, r.Store, r.Server = b, t.store, t.server
	return r
}

// The round-trip pass of each cell is short: round trips per op do not depend on time.
const (
	tripWarmup = 200 * time.Millisecond
	tripWindow = time.Second
)

func closeIdle(c client) {
	if hc, ok := c.(interface{ closeIdle() }); ok {
		hc.closeIdle()
	}
}

func analyzeDatabase(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ANALYZE")
	return err
}

func createDatabases(ctx context.Context, admin string, names ...string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{n}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// computeEfficiency fills Efficiency of every server result from the direct result of
// the same scenario, concurrency and store.
func computeEfficiency(rs []Result) {
	type k struct {
		sc, store string
		n         int
	}
	limit := map[k]float64{}
	for _, r := range rs {
		if r.Binding == "direct" {
			limit[k{r.Scenario, r.Store, r.Conc}] = r.OpsPerSec
		}
	}
	for i, r := range rs {
		if l := limit[k{r.Scenario, r.Store, r.Conc}]; l > 0 && !isDirect(r.Binding) {
			rs[i].Efficiency = r.OpsPerSec / l
		}
	}
}

// Save writes rep as JSON to path.
func Save(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads a report Save wrote.
func Load(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

// isDirect reports whether binding b runs the store in the benchmark's own process.
func isDirect(b string) bool { return b == "direct" || b == "direct-solo" }

// feedLatency measures the change feed's latency on srv's store: on PostgreSQL the
// watchers follow a second instance on the same database, as devices behind a load
// balancer would; the embedded store belongs to srv alone.
func feedLatency(ctx context.Context, cfg Config, store string, srv *child, databaseURL string) (FeedLatency, error) {
	watcherRoot, instances := srv.root, 1
	if databaseURL != "" && cfg.CPUProfile == "" {
		second, err := startServer(ctx, cfg.ServerBin, cfg.ServerArgs, databaseURL, "", cfg.Log)
		if err != nil {
			return FeedLatency{}, err
		}
		defer second.stop()
		watcherRoot, instances = second.root, 2
	}
	return measureFeed(ctx, store, srv.root, watcherRoot, instances, cfg.FeedWallets, feedInterval, cfg.FeedDuration)
}

// feedInterval is the time between one feed wallet's writes.
const feedInterval = 50 * time.Millisecond
