package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govss/vss/internal/bench"
)

// TestSmoke runs the smoke benchmark against a vss-server on each store and checks that
// every scenario ran through every binding and directly, with no failed request, and
// that on PostgreSQL every request through the server cost one database round trip. It
// asserts nothing about timing.
func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vss-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/govss/vss/cmd/vss-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vss-server: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jsonPath := filepath.Join(dir, "results.json")
	var stdout, stderr bytes.Buffer
	args := []string{"--smoke", "--stores", "postgres,sqlite", "--server-bin", bin, "--json", jsonPath, "--plot", filepath.Join(dir, "plots")}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("vss-bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("output:\n%s", stdout.String())

	rep, err := bench.Load(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	type cell struct{ store, scenario, binding string }
	ops := map[cell]int64{}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			t.Errorf("%s/%s/%s at %d: %d failed requests, first: %s", r.Store, r.Scenario, r.Binding, r.Conc, r.Errors, r.FirstError)
		}
		ops[cell{r.Store, r.Scenario, r.Binding}] += r.Ops
		// Every scenario's requests are single operations: one round trip each once the
		// statements are prepared on a connection (which adds a few during a cell). The
		// requests in flight when the window opens and closes blur the count of a cell
		// with few requests (large), so only cells of a few hundred are checked.
		if r.Store == "postgres" && r.Ops >= 300 && (r.DBTripsPerOp < 0.99 || r.DBTripsPerOp > 1.1) {
			t.Errorf("postgres/%s/%s at %d: %.3f database round trips per request, want 1", r.Scenario, r.Binding, r.Conc, r.DBTripsPerOp)
		}
	}
	for _, store := range []string{"postgres", "sqlite"} {
		for _, sc := range bench.Scenarios {
			for _, b := range []string{"vss-http", "connect", "direct"} {
				if ops[cell{store, sc.Name, b}] == 0 {
					t.Errorf("scenario %s through %s on %s: no ops", sc.Name, b, store)
				}
			}
		}
	}
	for _, sc := range bench.Scenarios {
		if !strings.Contains(stdout.String(), sc.Name) {
			t.Errorf("the output does not mention scenario %s", sc.Name)
		}
	}
	if len(rep.Memory) != 2 || rep.Memory[0].IdleRSSMB <= 0 || rep.Memory[0].HWMAfterMB <= 0 {
		t.Errorf("memory probe missing or empty: %+v", rep.Memory)
	}
	for _, name := range []string{"throughput-get.png", "latency-put-small.png"} {
		if _, err := os.Stat(filepath.Join(dir, "plots", name)); err != nil {
			t.Errorf("plot %s: %v", name, err)
		}
	}
}
