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

const rowFormat = "%-10s %-8s %-8s %5v %9v %8v %8v %9v %9v %9v %9v %7v %8v %9v %9v %6v\n"

// row prints one result as soon as it is measured.
func (t *table) row(r Result) {
	if !t.header {
		fmt.Fprintf(t.w, rowFormat, "scenario", "store", "binding", "conc", "ops/s", "p50 ms", "p99 ms", "p99.9 ms",
			"cpu-s/1k", "db cpu/1k", "gen cpu/1k", "rss MB", "db-rt/op", "in KB/op", "out KB/op", "errors")
		t.header = true
	}
	fmt.Fprintf(t.w, rowFormat, r.Scenario, r.Store, r.Binding, r.Conc, fmt.Sprintf("%.0f", r.OpsPerSec),
		fmt.Sprintf("%.2f", r.P50MS), fmt.Sprintf("%.2f", r.P99MS), fmt.Sprintf("%.2f", r.P999MS),
		num(r.ServerCPUPer1k, 3), num(r.DBCPUPer1k, 3), num(r.GenCPUPer1k, 3), num(r.ServerRSSMB, 0), num(r.DBTripsPerOp, 2),
		num(r.InKBPerOp, 2), num(r.OutKBPerOp, 2), r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(t.w, "  first error: %s\n", r.FirstError)
	}
}

func (t *table) flush() {}

func printMemory(w io.Writer, m Memory) {
	fmt.Fprintf(w, "# memory (%s): start RSS %.1f MB; one %.0f MB PutObjects raised peak RSS %.1f -> %.1f MB (%.2fx the value); %d idle keep-alive connections: RSS %.1f -> %.1f MB\n",
		m.Store, m.StartRSSMB, float64(m.LargePutBytes)/mb, m.HWMBeforeMB, m.HWMAfterMB, m.LargePutRaiseX, m.IdleConns, m.IdleBeforeMB, m.IdleRSSMB)
}

const sumFormat = "%-10s %-8s %-8s %5v %9v %12v %10v %9v\n"

// printSummary prints, for every server cell, its efficiency against the direct run
// and its tail ratio p99.9/p50.
func printSummary(w io.Writer, rep *Report) {
	fmt.Fprintf(w, sumFormat, "scenario", "store", "binding", "conc", "ops/s", "direct ops/s", "efficiency", "p99.9/p50")
	for _, r := range rep.Results {
		if r.Binding == "direct" {
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
		fmt.Fprintf(w, sumFormat, r.Scenario, r.Store, r.Binding, r.Conc, fmt.Sprintf("%.0f", r.OpsPerSec), direct, eff, tail)
	}
}
