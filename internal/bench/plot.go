package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Plot renders, into dir, for every scenario of rep: throughput-<scenario>.png (ops/s
// against concurrency, one line per store and binding) and latency-<scenario>.png (the
// latency distribution at concurrency 16, or the nearest level that ran).
func Plot(rep *Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var scenarios []string
	for _, r := range rep.Results {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
	}
	for _, sc := range scenarios {
		var rs []Result
		for _, r := range rep.Results {
			if r.Scenario == sc {
				rs = append(rs, r)
			}
		}
		if err := plotThroughput(sc, rs, filepath.Join(dir, "throughput-"+sc+".png")); err != nil {
			return err
		}
		if err := plotLatency(sc, rs, filepath.Join(dir, "latency-"+sc+".png")); err != nil {
			return err
		}
	}
	for _, store := range []string{"postgres", "sqlite", "external"} {
		if err := plotCPU(rep.Results, store, filepath.Join(dir, "cpu-"+store+".png")); err != nil {
			return err
		}
	}
	return nil
}

// cpuScenarios are the scenarios of the CPU breakdown: the two the efficiency targets
// are about, and the LDK-like mix.
var cpuScenarios = []string{"get", "put-small", "ldk-mix"}

// cpuConc is the concurrency of the CPU breakdown.
const cpuConc = 64

// plotCPU renders, for one store, the CPU time one request costs at concurrency cpuConc,
// split into the database, the server and the load generator, for each binding and the
// direct run: where the machine's cores go, and so why the server's throughput is what
// it is. Nothing is written when the report has no such cells.
func plotCPU(rs []Result, store, path string) error {
	var cells []Result
	for _, sc := range cpuScenarios {
		for _, b := range []string{"vss-http", "connect", "direct"} {
			i := slices.IndexFunc(rs, func(r Result) bool {
				return r.Store == store && r.Scenario == sc && r.Binding == b && r.Server == "" && r.Conc == cpuConc
			})
			if i >= 0 {
				cells = append(cells, rs[i])
			}
		}
		for _, r := range rs { // other servers, after ours
			if r.Store == store && r.Scenario == sc && r.Server != "" && r.Conc == cpuConc {
				cells = append(cells, r)
			}
		}
	}
	if len(cells) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: CPU per request at concurrency %d", store, cpuConc)
	p.Y.Label.Text = "CPU µs per request"
	p.Y.Min = 0
	p.Legend.Top = true
	names := make([]string, len(cells))
	for i, r := range cells {
		names[i] = r.Scenario + "\n" + r.Label()
	}
	p.NominalX(names...)
	parts := []struct {
		name string
		of   func(Result) float64
	}{
		{"database (PostgreSQL processes)", func(r Result) float64 { return r.DBCPUPer1k }},
		{"server (vss-server, or the one named)", func(r Result) float64 { return r.ServerCPUPer1k }},
		{"load generator (direct: + store package)", func(r Result) float64 { return r.GenCPUPer1k }},
	}
	top := 0.0
	for _, r := range cells {
		top = max(top, (max(r.DBCPUPer1k, 0)+max(r.ServerCPUPer1k, 0)+max(r.GenCPUPer1k, 0))*1000)
	}
	p.Y.Max = top * 1.35 // room for the legend above the bars
	var below *plotter.BarChart
	for i, part := range parts {
		vals := make(plotter.Values, len(cells))
		for j, r := range cells {
			vals[j] = max(part.of(r), 0) * 1000 // s per 1,000 ops -> µs per op
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(22))
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(i + 4)
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(part.name, bars)
	}
	return p.Save(20*vg.Centimeter, 11*vg.Centimeter, path)
}

// series groups results by store and binding, in first-seen order.
func series(rs []Result) (names []string, by map[string][]Result) {
	by = map[string][]Result{}
	for _, r := range rs {
		name := r.Store + " " + r.Label()
		if _, ok := by[name]; !ok {
			names = append(names, name)
		}
		by[name] = append(by[name], r)
	}
	return names, by
}

// style gives every line of a name the same color and dashes in every plot; another
// server's lines ("postgres reference/vss-http") get a color of their own.
func style(name string) (color.Color, []vg.Length) {
	palette := map[string]int{"vss-http": 0, "connect": 1, "direct": 2}
	i := 3
	if strings.Contains(name, "/") {
		palette = nil
	}
	for b, j := range palette {
		if len(name) >= len(b) && name[len(name)-len(b):] == b {
			i = j
		}
	}
	var dashes []vg.Length
	if len(name) >= 6 && name[:6] == "sqlite" {
		dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return plotutil.Color(i), dashes
}

func plotThroughput(sc string, rs []Result, path string) error {
	p := plot.New()
	p.Title.Text = sc + ": throughput against concurrency"
	p.X.Label.Text = "concurrent wallets"
	p.Y.Label.Text = "ops/s"
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for _, r := range rs {
		if !slices.ContainsFunc(ticks, func(t plot.Tick) bool { return t.Value == float64(r.Conc) }) {
			ticks = append(ticks, plot.Tick{Value: float64(r.Conc), Label: fmt.Sprint(r.Conc)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	names, by := series(rs)
	for _, name := range names {
		var pts plotter.XYs
		for _, r := range by[name] {
			pts = append(pts, plotter.XY{X: float64(r.Conc), Y: r.OpsPerSec})
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int { return int(a.X - b.X) })
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, l.Dashes = style(name)
		s.Color = l.Color
		p.Add(l, s)
		p.Legend.Add(name, l, s)
	}
	p.Add(plotter.NewGrid())
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}

// nines maps a quantile to how many nines it has: 0.9 -> 1, 0.99 -> 2, 0.5 -> 0.3.
func nines(q float64) float64 { return -math.Log10(1 - q) }

func plotLatency(sc string, rs []Result, path string) error {
	levels := map[int]bool{}
	for _, r := range rs {
		levels[r.Conc] = true
	}
	conc := 0
	for n := range levels {
		if conc == 0 || math.Abs(math.Log(float64(n)/16)) < math.Abs(math.Log(float64(conc)/16)) {
			conc = n
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: latency distribution at concurrency %d", sc, conc)
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{
		{Value: nines(0.5), Label: "p50"}, {Value: nines(0.9), Label: "p90"}, {Value: nines(0.99), Label: "p99"},
		{Value: nines(0.999), Label: "p99.9"}, {Value: nines(0.9999), Label: "p99.99"},
	})
	p.Legend.Top = true
	p.Legend.Left = true
	var at []Result
	for _, r := range rs {
		if r.Conc == conc {
			at = append(at, r)
		}
	}
	names, by := series(at)
	for _, name := range names {
		r := by[name][0]
		var pts plotter.XYs
		for i, q := range Quantiles {
			if q < 0.5 || q >= 1 || i >= len(r.LatencyMS) || r.LatencyMS[i] <= 0 {
				continue
			}
			pts = append(pts, plotter.XY{X: nines(q), Y: r.LatencyMS[i]})
		}
		if len(pts) == 0 {
			continue
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, l.Dashes = style(name)
		s.Color = l.Color
		p.Add(l, s)
		p.Legend.Add(name, l, s)
	}
	p.Add(plotter.NewGrid())
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}
