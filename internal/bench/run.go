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
	// http://127.0.0.1:8080/vss); only the vss-http binding runs, and nothing direct.
	Target string
	// ServerPID, with Target, is the external server's process, for CPU and RSS.
	ServerPID int
	// ServerBin is the vss-server binary to start when Target is empty.
	ServerBin string
	// ServerArgs are extra arguments for every server the benchmark starts (flags such
	// as --max-concurrent-per-user=-1, to measure what a setting costs).
	ServerArgs []string
	// Stores are the stores to start the server on: postgres, sqlite.
	Stores []string
	// Bindings are vss-http and/or connect.
	Bindings []string
	// Scenarios names the scenarios to run; empty: all.
	Scenarios []string
	// Concurrency levels; each runs with that many wallets.
	Concurrency []int
	// Direct runs the direct store limit next to the server.
	Direct   bool
	Warmup   time.Duration
	Duration time.Duration
	Sizes    Sizes
	// Memory runs the memory probes (large put peak RSS, idle connections) on a fresh
	// server before the scenarios.
	Memory    bool
	IdleConns int
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
	Results []Result  `json:"results"`
	Memory  []Memory  `json:"memory"`
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
	if cfg.Target != "" {
		t := &target{store: "external", serverPID: cfg.ServerPID, root: strings.TrimSuffix(cfg.Target, "/")}
		t.bindings = map[string]func(*counters, int) client{
			"vss-http": func(c *counters, n int) client { return &vssHTTP{base: t.root, hc: newHTTPClient(n, c)} },
		}
		err := runTarget(ctx, cfg, scs, t, []string{"vss-http"}, emit)
		tw.flush()
		return rep, err
	}
	for _, store := range cfg.Stores {
		if err := runStore(ctx, cfg, scs, store, rep, emit); err != nil {
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

// target is something to load: a server's bindings, or a direct store.
type target struct {
	store     string
	root      string
	serverPID int
	dbPID     int // PostgreSQL's postmaster, 0 when not ours
	bindings  map[string]func(c *counters, conns int) client
	// trips are the same bindings through the counting proxy, for the round-trip pass
	// after each cell; nil when there is no proxy.
	trips map[string]func(c *counters, conns int) client
	proxy *rtProxy
	// analyze, when set, refreshes the database's planner statistics.
	analyze func(context.Context) error
}

func runStore(ctx context.Context, cfg Config, scs []*Scenario, store string, rep *Report, emit func(Result)) error {
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
		openDirect func(proxied bool) (storage.Store, error)
		analyze    func(context.Context) error
	)
	switch store {
	case "postgres":
		fmt.Fprintln(cfg.Out, "# starting a throwaway PostgreSQL cluster")
		admin, stopPG, err := pgtest.StartCluster()
		if err != nil {
			return err
		}
		defer stopPG()
		dbPID = childPID("postgres")
		u, err := url.Parse(admin)
		if err != nil {
			return err
		}
		if proxy, err = newProxy(u.Host); err != nil {
			return err
		}
		defer proxy.close()
		if err := createDatabases(ctx, admin, "vss_server", "vss_direct"); err != nil {
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
		serverURL, proxiedURL = dbURL("vss_server", false), dbURL("vss_server", true)
		analyze = func(ctx context.Context) error {
			for _, db := range []string{"vss_server", "vss_direct"} {
				if err := analyzeDatabase(ctx, dbURL(db, false)); err != nil {
					return err
				}
			}
			return nil
		}
		openDirect = func(proxied bool) (storage.Store, error) {
			// The store package itself: the exact queries the server runs, over the same
			// pool configuration, with no HTTP, protobuf or authentication in between.
			return postgres.Open(ctx, dbURL("vss_direct", proxied), postgres.WithLogger(slog.New(slog.DiscardHandler)))
		}
	case "sqlite":
		openDirect = func(bool) (storage.Store, error) {
			return sqlite.Open(ctx, filepath.Join(tmp, "direct", "vss.sqlite"))
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

	t := &target{store: store, root: srv.root, serverPID: srv.pid(), dbPID: dbPID, proxy: proxy, analyze: analyze}
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
	ds, err := openDirect(false)
	if err != nil {
		return err
	}
	defer ds.Close()
	d := &target{store: store, dbPID: dbPID, proxy: proxy, analyze: analyze}
	d.bindings = map[string]func(*counters, int) client{
		"direct": func(*counters, int) client { return &direct{s: ds} },
	}
	if proxy != nil {
		dp, err := openDirect(true)
		if err != nil {
			return err
		}
		defer dp.Close()
		d.trips = map[string]func(*counters, int) client{
			"direct": func(*counters, int) client { return &direct{s: dp} },
		}
	}
	return runTarget(ctx, cfg, scs, d, []string{"direct"}, emit)
}

// serverBindings are the clients of the server at root, by binding.
func serverBindings(root string) map[string]func(*counters, int) client {
	return map[string]func(*counters, int) client{
		"vss-http": func(c *counters, n int) client { return &vssHTTP{base: root + "/vss", hc: newHTTPClient(n, c)} },
		"connect":  func(c *counters, n int) client { return newConnect(root, newHTTPClient(n, c)) },
	}
}

// runTarget runs every scenario at every concurrency through each binding of t.
func runTarget(ctx context.Context, cfg Config, scs []*Scenario, t *target, bindings []string, emit func(Result)) error {
	maxConc := slices.Max(cfg.Concurrency)
	ws, err := newWallets(maxConc)
	if err != nil {
		return err
	}
	for _, sc := range scs {
		levels := cfg.Concurrency
		if sc.MaxConc > 0 {
			levels = slices.DeleteFunc(slices.Clone(levels), func(n int) bool { return n > sc.MaxConc })
		}
		if len(levels) == 0 {
			continue
		}
		if sc.seed != nil {
			cnt := &counters{}
			c := t.bindings[bindings[0]](cnt, 8)
			n := slices.Max(levels)
			t0 := time.Now()
			if err := seedAll(ctx, sc, c, ws[:n], cfg.Sizes); err != nil {
				return fmt.Errorf("seed %s: %w", sc.Name, err)
			}
			fmt.Fprintf(cfg.Out, "# seeded %s for %d wallets on %s/%s in %.1fs\n", sc.Name, n, t.store, bindings[0], time.Since(t0).Seconds())
		}
		if t.analyze != nil {
			// A production database has planner statistics (autovacuum gathers them
			// within a minute of a change); a benchmark database seeded a moment ago
			// has none, and plans made without them can scan a whole store.
			if err := t.analyze(ctx); err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
		}
		for _, n := range levels {
			for _, b := range bindings {
				mk, ok := t.bindings[b]
				if !ok {
					return fmt.Errorf("unknown binding %q", b)
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				cnt := &counters{}
				c := mk(cnt, n)
				storeID := sc.Name
				if sc.seed == nil {
					storeID = fmt.Sprintf("%s-%s-%d", sc.Name, b, n)
				}
				r := runCell(ctx, sc, c, ws[:n], storeID, cfg.Sizes, cfg.Warmup, cfg.Duration,
					probes{serverPID: t.serverPID, dbPID: t.dbPID, bytes: cnt})
				closeIdle(c)
				if mk, ok := t.trips[b]; ok {
					// The round-trip pass: the same load through the counting proxy.
					tc := mk(&counters{}, n)
					if sc.seed == nil {
						storeID += "-trips"
					}
					tr := runCell(ctx, sc, tc, ws[:n], storeID, cfg.Sizes, tripWarmup, min(cfg.Duration, tripWindow), probes{proxy: t.proxy})
					closeIdle(tc)
					r.DBTripsPerOp = tr.DBTripsPerOp
					if b == "direct" { // the bytes moved are the database's
						r.InKBPerOp, r.OutKBPerOp = tr.InKBPerOp, tr.OutKBPerOp
					}
				}
				if b == "direct" && t.trips == nil {
					r.InKBPerOp, r.OutKBPerOp = -1, -1 // in process: no bytes move
				}
				r.Binding, r.Store = b, t.store
				emit(r)
			}
		}
	}
	return nil
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
		if l := limit[k{r.Scenario, r.Store, r.Conc}]; l > 0 && r.Binding != "direct" {
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
