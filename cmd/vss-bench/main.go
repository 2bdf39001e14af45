// Command vss-bench measures a VSS server under the load LDK Node wallets put on it, and
// the same load straight against its database, to show how close the server gets to the
// database's own limit. See BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govss/vss/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "vss-bench:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vss-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg      = bench.Config{Out: stdout}
		stores   = fs.String("stores", "postgres,sqlite", "stores to start the server on, comma-separated: postgres, sqlite")
		bindings = fs.String("bindings", "vss-http,connect", "bindings to load, comma-separated: vss-http, connect, connect-encrypted (see --encrypt)")
		encrypt  = fs.Bool("encrypt", false, "also run every scenario through the Go client's encryption layer (binding connect-encrypted: "+
			"client/encrypted over Connect, keys obfuscated, values sealed and verified on the load generator's side), "+
			"to compare with connect; its generator CPU per request includes the client-side cost")
		scenarios = fs.String("scenarios", "", "scenarios to run, comma-separated (default all): put-small, put-cas, get, put-batch, startup, ldk-mix, large")
		conc      = fs.String("concurrency", "1,16,64,256", "concurrency levels (simulated wallets), comma-separated")
		smoke     = fs.Bool("smoke", false, "quick check: every scenario at concurrency 1 and 4 for about 1 s, small sizes")
		jsonOut   = fs.String("json", "", "save the raw results to this `file`")
		plotDir   = fs.String("plot", "", "render PNG plots into this `directory` (from --json's file when given alone with --from)")
		mdOut     = fs.String("markdown", "", "write the results as Markdown tables to this `file` (with --from: from a saved run)")
		from      = fs.String("from", "", "with --plot: read the results from this JSON `file` instead of running")
		serverLog = fs.String("server-log", "", "append the started servers' logs to this `file` (default: discarded)")
		large     = fs.Int("large-bytes", 0, "value size of the large scenario and the memory probe (default 8 MiB, 1 MiB with --smoke)")
	)
	fs.StringVar(&cfg.Target, "target", "", "VSS HTTP base `URL` of an external server to load instead of starting one, e.g. http://127.0.0.1:8080/vss")
	fs.StringVar(&cfg.TargetName, "target-name", "external", "with --target: the `name` its rows carry in tables and plots (e.g. reference)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "with --target: the server's `pid`, to read its CPU and RSS from /proc")
	fs.IntVar(&cfg.TargetDBPID, "target-db-pid", 0, "with --target: the `pid` of the postmaster of its PostgreSQL, to read the database's CPU from /proc")
	fs.StringVar(&cfg.TargetDBURL, "target-db-url", "", "with --target: a PostgreSQL `URL` of its database, to read the WAL flushes (pg_stat_wal) and ANALYZE after seeding")
	fs.BoolVar(&cfg.SideBySide, "side-by-side", false, "with --target: also start our server on --stores and run every vss-http cell on both servers, "+
		"alternating which goes first, into the same tables and plots")
	fs.BoolVar(&cfg.CPUOnly, "cpu-only", false, "run the throwaway PostgreSQL with fsync, synchronous_commit and full_page_writes off, "+
		"so commits do not wait for the disk: a view of the CPU cost alone, not of production")
	fs.StringVar(&cfg.PostgresURL, "postgres-url", "", "administrative `URL` of a running PostgreSQL to use instead of a throwaway cluster "+
		"(its databases vss_bench_server and vss_bench_direct are dropped and created)")
	fs.IntVar(&cfg.PostgresPID, "postgres-pid", 0, "with --postgres-url: the `pid` of its postmaster, for the database's CPU")
	fs.StringVar(&cfg.ServerBin, "server-bin", "bin/vss-server", "vss-server `binary` to start (make build)")
	compareArgs := fs.String("compare-args", "", "run the benchmark --rounds times with --server-args and as often with these `arguments` instead, "+
		"interleaved, and print each cell's throughput and server CPU under both (e.g. what a setting costs)")
	rounds := fs.Int("rounds", 3, "with --compare-args: rounds of each")
	serverArgs := fs.String("server-args", "", "extra `arguments` for the servers it starts, separated by spaces, e.g. --max-concurrent-per-user=-1")
	fs.BoolVar(&cfg.Direct, "direct", true, "also run every scenario directly against the store, for the efficiency column")
	fs.BoolVar(&cfg.DirectSolo, "direct-solo", false, "with --direct, also run the store directly with group commit off (binding direct-solo): one transaction per request, as a client sending the same statements straight to the database")
	fs.BoolVar(&cfg.Memory, "memory", true, "measure the peak RSS of one large PutObjects and the RSS with --idle-conns idle connections")
	fs.IntVar(&cfg.IdleConns, "idle-conns", 1000, "idle keep-alive connections for the memory probe")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "run the server inside vss-bench and write a CPU profile of its runs to `prefix`-<store>.pprof (go tool pprof)")
	fs.IntVar(&cfg.FeedWallets, "feed-wallets", 16, "after the scenarios, measure the change feed's notification latency with this many wallets, "+
		"each writing every 50 ms through one server instance while a second device watches through another on the same PostgreSQL (0: skip)")
	fs.DurationVar(&cfg.FeedDuration, "feed-duration", 10*time.Second, "how long the feed latency probe writes")
	fs.IntVar(&cfg.TransferMB, "transfer-mb", 0, "after the scenarios, measure moving one user holding this many `MiB` of values: ExportData to a file, "+
		"then ImportData of it for another user, on a fresh server (MB/s, and the raise of the server's peak RSS; 0: skip)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per cell")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each cell")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vss-bench [flags]\n\nRuns closed-loop VSS load (one simulated wallet per unit of concurrency) against a\n"+
			"vss-server it starts (or --target), and the same load directly against the store.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *from != "" {
		if *plotDir == "" && *mdOut == "" {
			return errors.New("--from needs --plot or --markdown")
		}
		rep, err := bench.Load(*from)
		if err != nil {
			return err
		}
		if *mdOut != "" {
			if err := bench.Markdown(rep, *mdOut); err != nil {
				return err
			}
		}
		if *plotDir != "" {
			return bench.Plot(rep, *plotDir)
		}
		return nil
	}
	cfg.Stores, cfg.Bindings, cfg.Scenarios = splitList(*stores), splitList(*bindings), splitList(*scenarios)
	if *encrypt && !slices.Contains(cfg.Bindings, "connect-encrypted") {
		cfg.Bindings = append(cfg.Bindings, "connect-encrypted")
	}
	cfg.ServerArgs = strings.Fields(*serverArgs)
	for _, s := range splitList(*conc) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("--concurrency: bad level %q", s)
		}
		cfg.Concurrency = append(cfg.Concurrency, n)
	}
	cfg.Sizes = bench.DefaultSizes
	if *smoke {
		cfg.Sizes = bench.SmokeSizes
		cfg.Concurrency = []int{1, 4}
		cfg.Warmup, cfg.Duration = 100*time.Millisecond, 400*time.Millisecond
		cfg.IdleConns = min(cfg.IdleConns, 100)
		cfg.FeedWallets, cfg.FeedDuration = min(cfg.FeedWallets, 4), time.Second
		cfg.TransferMB = 8
	}
	if *large > 0 {
		cfg.Sizes.Large = *large
	}
	if len(cfg.Concurrency) == 0 {
		return errors.New("--concurrency: no levels")
	}
	if cfg.SideBySide && cfg.Target == "" {
		return errors.New("--side-by-side needs --target")
	}
	if cfg.CPUOnly && cfg.PostgresURL != "" {
		return errors.New("--cpu-only sets up the throwaway cluster; a --postgres-url server keeps its own settings")
	}
	if cfg.Target != "" && !cfg.SideBySide {
		cfg.Direct, cfg.Memory, cfg.FeedWallets, cfg.TransferMB = false, false, 0, 0
	}
	if cfg.CPUProfile != "" {
		cfg.Memory = false // the server shares this process: its memory is not its own
	}
	if *serverLog != "" {
		f, err := os.OpenFile(*serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.Log = f
	}
	if *compareArgs != "" {
		if cfg.Target != "" || cfg.CPUProfile != "" || *rounds < 1 {
			return errors.New("--compare-args needs servers it starts (no --target, no --cpuprofile) and --rounds >= 1")
		}
		cfg.Direct, cfg.Memory, cfg.FeedWallets = false, false, 0
		return compare(ctx, cfg, strings.Fields(*compareArgs), *rounds, stdout)
	}
	rep, err := bench.Run(ctx, cfg)
	if rep != nil {
		rep.Args = args
		if *jsonOut != "" {
			if serr := bench.Save(*jsonOut, rep); serr != nil && err == nil {
				err = serr
			}
		}
		if *mdOut != "" && err == nil {
			err = bench.Markdown(rep, *mdOut)
		}
		if *plotDir != "" && err == nil {
			err = bench.Plot(rep, *plotDir)
		}
	}
	return err
}

// compare runs cfg rounds times with its ServerArgs (A) and as often with argsB (B),
// alternating A and B so that drifts of the machine fall on both, and prints each
// cell's mean throughput and server CPU per request under both, and B's throughput
// relative to A's.
func compare(ctx context.Context, cfg bench.Config, argsB []string, rounds int, w io.Writer) error {
	type key struct {
		scenario, store, binding string
		conc                     int
	}
	type sums struct{ ops, cpu [2][]float64 }
	cells := map[key]*sums{}
	var order []key
	argsA := cfg.ServerArgs
	cfg.Out = io.Discard
	for round := range rounds {
		for side, args := range [][]string{argsA, argsB} {
			cfg.ServerArgs = args
			rep, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			for _, r := range rep.Results {
				k := key{r.Scenario, r.Store, r.Binding, r.Conc}
				c := cells[k]
				if c == nil {
					c = &sums{}
					cells[k] = c
					order = append(order, k)
				}
				c.ops[side] = append(c.ops[side], r.OpsPerSec)
				c.cpu[side] = append(c.cpu[side], r.ServerCPUPer1k*1000)
				fmt.Fprintf(w, "round %d %s: %s %s %s %d wallets: %.0f ops/s, server CPU %.0f µs/op\n",
					round+1, "AB"[side:side+1], r.Scenario, r.Store, r.Binding, r.Conc, r.OpsPerSec, r.ServerCPUPer1k*1000)
			}
		}
	}
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(max(len(xs), 1))
	}
	fmt.Fprintf(w, "\nA: %q\nB: %q\n", strings.Join(argsA, " "), strings.Join(argsB, " "))
	fmt.Fprintf(w, "%-10s %-8s %-8s %5s %12s %12s %8s %14s %14s\n", "scenario", "store", "binding", "conc", "A ops/s", "B ops/s", "B/A", "A CPU µs/op", "B CPU µs/op")
	for _, k := range order {
		c := cells[k]
		a, b := mean(c.ops[0]), mean(c.ops[1])
		fmt.Fprintf(w, "%-10s %-8s %-8s %5d %12.0f %12.0f %8.3f %14.0f %14.0f\n", k.scenario, k.store, k.binding, k.conc, a, b, b/a, mean(c.cpu[0]), mean(c.cpu[1]))
	}
	return nil
}
