package bench

import (
	"fmt"
	"io"
)

type table struct {
	w      io.Writer
	header bool
}

func newTable(w io.Writer) *table { return &table{w: w} }

func num(v float64, prec int) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

const rowFormat = "%-10s %-8s %-18s %5v %9v %8v %8v %9v %9v %9v %9v %7v %8v %8v %8v %9v %9v %6v\n"

// row prints one result as soon as it is measured.
func (t *table) row(r Result) {
	if !t.header {
		fmt.Fprintf(t.w, rowFormat, "scenario", "store", "binding", "conc", "ops/s", "p50 ms", "p99 ms", "p99.9 ms",
			"cpu-s/1k", "db cpu/1k", "gen cpu/1k", "rss MB", "db-rt/op", "wal-fl/op", "wal-wr/op", "in KB/op", "out KB/op", "errors")
		t.header = true
	}
	fmt.Fprintf(t.w, rowFormat, r.Scenario, r.Store, r.Label(), r.Conc, fmt.Sprintf("%.0f", r.OpsPerSec),
		fmt.Sprintf("%.2f", r.P50MS), fmt.Sprintf("%.2f", r.P99MS), fmt.Sprintf("%.2f", r.P999MS),
		num(r.ServerCPUPer1k, 3), num(r.DBCPUPer1k, 3), num(r.GenCPUPer1k, 3), num(r.ServerRSSMB, 0), num(r.DBTripsPerOp, 2),
		num(r.WALSyncsPerOp, 2), num(r.WALWritesPerOp, 2), num(r.InKBPerOp, 2), num(r.OutKBPerOp, 2), r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(t.w, "  first error: %s\n", r.FirstError)
	}
}

func (t *table) flush() {}

func printMemory(w io.Writer, m Memory) {
	fmt.Fprintf(w, "# memory (%s): start RSS %.1f MB; one %.0f MB PutObjects raised peak RSS %.1f -> %.1f MB (%.2fx the value); %d idle keep-alive connections: RSS %.1f -> %.1f MB\n",
		m.Store, m.StartRSSMB, float64(m.LargePutBytes)/mb, m.HWMBeforeMB, m.HWMAfterMB, m.LargePutRaiseX, m.IdleConns, m.IdleBeforeMB, m.IdleRSSMB)
}

const sumFormat = "%-10s %-8s %-18s %5v %9v %12v %10v %9v\n"

// printSummary prints, for every server cell, its efficiency against the direct run
// and its tail ratio p99.9/p50.
func printSummary(w io.Writer, rep *Report) {
	fmt.Fprintf(w, sumFormat, "scenario", "store", "binding", "conc", "ops/s", "direct ops/s", "efficiency", "p99.9/p50")
	for _, r := range rep.Results {
		if isDirect(r.Binding) {
			continue
		}
		direct, eff := "-", "-"
		if r.Efficiency > 0 {
			direct = fmt.Sprintf("%.0f", r.OpsPerSec/r.Efficiency)
			eff = fmt.Sprintf("%.2f", r.Efficiency)
		}
		tail := "-"
		if r.P50MS > 0 {
			tail = fmt.Sprintf("%.1f", r.P999MS/r.P50MS)
		}
		fmt.Fprintf(w, sumFormat, r.Scenario, r.Store, r.Label(), r.Conc, fmt.Sprintf("%.0f", r.OpsPerSec), direct, eff, tail)
	}
}

// printTargets prints each performance target next to what this run measured, for the
// cells the run has: it reports, it does not judge a pass (that is for a reader who
// knows the machine was quiet).
func printTargets(w io.Writer, rep *Report) {
	find := func(store, sc, b string, conc int) (Result, bool) {
		for _, r := range rep.Results {
			if r.Store == store && r.Scenario == sc && r.Binding == b && r.Server == "" && r.Conc == conc {
				return r, true
			}
		}
		return Result{}, false
	}
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	for _, store := range []string{"postgres", "sqlite", "external"} {
		for _, b := range []string{"vss-http", "connect"} {
			for _, sc := range []string{"put-small", "get"} {
				if r, ok := find(store, sc, b, 64); ok && r.Efficiency > 0 {
					add("efficiency >= 0.85, %s at 64 (%s/%s): %.2f", sc, store, b, r.Efficiency)
				}
			}
			for _, n := range []int{1, 16, 64, 256} {
				batch, ok1 := find(store, "put-batch", b, n)
				small, ok2 := find(store, "put-small", b, n)
				if ok1 && ok2 && small.P50MS > 0 {
					add("put-batch p50 <= 3x put-small p50 at %d (%s/%s): %.2f ms / %.2f ms = %.1fx", n, store, b, batch.P50MS, small.P50MS, batch.P50MS/small.P50MS)
				}
			}
			for _, r := range rep.Results {
				if r.Store == store && r.Binding == b && r.Server == "" && r.Conc == 16 && r.P50MS > 0 {
					add("p99.9 <= 10x p50 at 16, %s (%s/%s): %.2f ms / %.2f ms = %.1fx", r.Scenario, store, b, r.P999MS, r.P50MS, r.P999MS/r.P50MS)
				}
			}
		}
	}
	for _, m := range rep.Memory {
		add("RSS < 150 MB with %d idle keep-alive connections (%s): %.1f MB", m.IdleConns, m.Store, m.IdleRSSMB)
		add("one %.0f MB PutObjects raises peak RSS <= 3x its size (%s): %.2fx", float64(m.LargePutBytes)/mb, m.Store, m.LargePutRaiseX)
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\n# targets: what this run measured")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
