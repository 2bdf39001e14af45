package bench

import (
	"context"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Quantiles are the latency quantiles every result records (for the distribution plot).
var Quantiles = []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1}

// Result is one cell: a scenario at one concurrency through one binding to one store.
type Result struct {
	Scenario string `json:"scenario"`
	Binding  string `json:"binding"` // vss-http, connect, or direct
	// Server names a server that is not this repository's (--target); empty for ours
	// and for direct runs.
	Server string `json:"server,omitempty"`
	Store  string `json:"store"` // postgres, sqlite, or external
	Conc   int    `json:"concurrency"`
	Ops    int64  `json:"ops"`
	Errors int64  `json:"errors"`
	// FirstError is the first error a request returned, if any.
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	OpsPerSec  float64 `json:"ops_per_sec"`
	// Latency quantiles in milliseconds, at Quantiles.
	LatencyMS []float64 `json:"latency_ms"`
	P50MS     float64   `json:"p50_ms"`
	P99MS     float64   `json:"p99_ms"`
	P999MS    float64   `json:"p999_ms"`
	// ServerCPUPer1k is the server's CPU seconds per 1,000 ops; -1 when unknown.
	ServerCPUPer1k float64 `json:"server_cpu_s_per_1k_ops"`
	// DBCPUPer1k is PostgreSQL's CPU seconds (postmaster and backends) per 1,000 ops;
	// -1 when unknown.
	DBCPUPer1k float64 `json:"db_cpu_s_per_1k_ops"`
	// GenCPUPer1k is the load generator's CPU seconds per 1,000 ops: the benchmark's own
	// process (with --cpuprofile, the in-process server too); for direct runs, the store
	// package runs in it.
	GenCPUPer1k float64 `json:"gen_cpu_s_per_1k_ops"`
	// ServerRSSMB is the server's resident set at the end of the cell; -1 when unknown.
	ServerRSSMB float64 `json:"server_rss_mb"`
	// DBTripsPerOp is the database round trips per op; -1 when unknown.
	DBTripsPerOp float64 `json:"db_round_trips_per_op"`
	// WALSyncsPerOp and WALWritesPerOp are PostgreSQL's WAL flushes to disk
	// (pg_stat_wal.wal_sync) and WAL writes (wal_write) per op, across the whole
	// cluster; -1 when unknown. With fsync off no flush happens.
	WALSyncsPerOp  float64 `json:"wal_syncs_per_op"`
	WALWritesPerOp float64 `json:"wal_writes_per_op"`
	// InKBPerOp and OutKBPerOp are the bytes sent to and received from the server (or the
	// database, for direct) per op.
	InKBPerOp  float64 `json:"in_kb_per_op"`
	OutKBPerOp float64 `json:"out_kb_per_op"`
	// Efficiency is ops/s divided by the direct ops/s of the same scenario, concurrency
	// and store; 0 when there is none.
	Efficiency float64 `json:"efficiency"`
}

// Label is how tables and plots name the cell's binding: the binding, after the
// server's name for a server that is not ours ("reference/vss-http").
func (r Result) Label() string {
	if r.Server != "" {
		return r.Server + "/" + r.Binding
	}
	return r.Binding
}

// probes read what a cell measures besides latency: counters sampled when the
// measured window opens and closes.
type probes struct {
	serverPID int // 0: not known
	dbPID     int // 0: not known
	proxy     *rtProxy
	bytes     *counters // nil: use the proxy's bytes
	wal       *walProbe // nil: not known
}

type sample struct {
	cpu, dbCPU, genCPU  float64
	trips, in, out      int64
	walWrites, walSyncs int64 // -1: not known
}

func (p probes) sample() sample {
	s := sample{cpu: -1, dbCPU: -1, genCPU: -1, walWrites: -1, walSyncs: -1}
	if p.wal != nil {
		if w, f, err := p.wal.read(); err == nil {
			s.walWrites, s.walSyncs = w, f
		}
	}
	if p.serverPID > 0 {
		if c, err := procCPU(p.serverPID); err == nil {
			s.cpu = c
		}
	}
	if p.dbPID > 0 {
		if c, err := treeCPU(p.dbPID); err == nil {
			s.dbCPU = c
		}
	}
	if c, err := procCPU(os.Getpid()); err == nil {
		s.genCPU = c
	}
	if p.proxy != nil {
		s.trips = p.proxy.trips.Load()
	}
	if p.bytes != nil {
		s.in, s.out = p.bytes.in.Load(), p.bytes.out.Load()
	} else if p.proxy != nil {
		s.in, s.out = p.proxy.toDB.Load(), p.proxy.fromDB.Load()
	}
	return s
}

// runCell runs sc with conc workers, one per wallet, for warmup then duration, and
// measures the duration.
func runCell(ctx context.Context, sc *Scenario, c client, ws []*wallet, storeID string, sz Sizes, warmup, duration time.Duration, pr probes) Result {
	res := Result{Scenario: sc.Name, Conc: len(ws), ServerCPUPer1k: -1, DBCPUPer1k: -1, GenCPUPer1k: -1, ServerRSSMB: -1, DBTripsPerOp: -1,
		WALSyncsPerOp: -1, WALWritesPerOp: -1}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Every value is cut from these random bytes (incompressible, like the encrypted
	// values wallets store), so that the generator does not spend the CPU the measured
	// server and database share with it on making fresh ones: large enough for the
	// largest value a scenario writes (the network graph of ldk-mix, the large scenario).
	buf := make([]byte, max(1<<20, sz.Large, int(5<<20*sz.MixScale)))
	_, _ = rand.Read(buf)
	var (
		measuring atomic.Bool
		errCount  atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, len(ws))
	)
	for i, w := range ws {
		k := &worker{w: w, c: c, storeID: storeID, sz: sz, rng: mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))),
			buf: buf, versions: map[string]int64{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				err := sc.op(ctx, k)
				d := time.Since(start)
				if ctx.Err() != nil {
					return // cut short by the end of the cell
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if errors.Is(err, context.Canceled) {
						return
					}
					time.Sleep(10 * time.Millisecond) // do not spin on a broken server
					continue
				}
				if measuring.Load() {
					lats[i] = append(lats[i], d)
				}
			}
		}()
	}

	sleep(ctx, warmup)
	before := pr.sample()
	t0 := time.Now()
	measuring.Store(true)
	sleep(ctx, duration)
	measuring.Store(false)
	elapsed := time.Since(t0)
	after := pr.sample()
	cancel()
	wg.Wait()

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.Ops = int64(len(all))
	res.Errors = errCount.Load()
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.Seconds = elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / res.Seconds
	res.LatencyMS = make([]float64, len(Quantiles))
	for i, q := range Quantiles {
		res.LatencyMS[i] = quantileMS(all, q)
	}
	res.P50MS, res.P99MS, res.P999MS = quantileMS(all, 0.5), quantileMS(all, 0.99), quantileMS(all, 0.999)
	if res.Ops > 0 {
		ops := float64(res.Ops)
		per1k := func(b, a float64) float64 {
			if b < 0 || a < 0 {
				return -1
			}
			return (a - b) / ops * 1000
		}
		res.ServerCPUPer1k = per1k(before.cpu, after.cpu)
		res.DBCPUPer1k = per1k(before.dbCPU, after.dbCPU)
		res.GenCPUPer1k = per1k(before.genCPU, after.genCPU)
		if before.walSyncs >= 0 && after.walSyncs >= 0 {
			res.WALSyncsPerOp = float64(after.walSyncs-before.walSyncs) / ops
			res.WALWritesPerOp = float64(after.walWrites-before.walWrites) / ops
		}
		if pr.proxy != nil {
			res.DBTripsPerOp = float64(after.trips-before.trips) / ops
		}
		res.InKBPerOp = float64(after.in-before.in) / ops / 1024
		res.OutKBPerOp = float64(after.out-before.out) / ops / 1024
	}
	if pr.serverPID > 0 {
		if rss, _, err := procMem(pr.serverPID); err == nil {
			res.ServerRSSMB = float64(rss) / (1 << 20)
		}
	}
	return res
}

func quantileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / float64(time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
