package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/internal/bench"
	"github.com/govss/vss/internal/pgtest"
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
	rep, out := runBench(t, dir, "--smoke", "--stores", "postgres,sqlite", "--server-bin", bin)
	type cell struct{ store, scenario, binding string }
	ops := map[cell]int64{}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			t.Errorf("%s/%s/%s at %d: %d failed requests, first: %s", r.Store, r.Scenario, r.Binding, r.Conc, r.Errors, r.FirstError)
		}
		ops[cell{r.Store, r.Scenario, r.Binding}] += r.Ops
		// Every scenario's requests are single operations: one round trip each once the
		// statements are prepared on a connection (which adds a few during a cell), and
		// writes that wait together share one (group commit), so with more than one
		// wallet a request costs at most one. The requests in flight when the window
		// opens and closes blur the count of a cell with few requests (large), so only
		// cells of a few hundred are checked.
		if r.Store == "postgres" && r.Ops >= 300 {
			if r.DBTripsPerOp > 1.1 || (r.Conc == 1 && r.DBTripsPerOp < 0.99) {
				t.Errorf("postgres/%s/%s at %d: %.3f database round trips per request, want 1 (at most 1 with several wallets)",
					r.Scenario, r.Binding, r.Conc, r.DBTripsPerOp)
			}
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
		if !strings.Contains(out, sc.Name) {
			t.Errorf("the output does not mention scenario %s", sc.Name)
		}
	}
	if len(rep.Memory) != 2 || rep.Memory[0].IdleRSSMB <= 0 || rep.Memory[0].HWMAfterMB <= 0 {
		t.Errorf("memory probe missing or empty: %+v", rep.Memory)
	}
	if len(rep.Feed) != 2 || rep.Feed[0].Instances != 2 || rep.Feed[1].Instances != 1 {
		t.Errorf("feed latency: %+v, want postgres on two instances and sqlite on one", rep.Feed)
	}
	for _, f := range rep.Feed {
		if f.Changes == 0 || f.Missed > 0 || f.P50MS <= 0 && f.SendP50MS <= 0 {
			t.Errorf("feed latency on %s: %d changes, %d missed, p50 %.2f ms: every write's change should arrive", f.Store, f.Changes, f.Missed, f.P50MS)
		}
	}
	if len(rep.Transfer) != 2 {
		t.Errorf("transfer: %+v, want one per store", rep.Transfer)
	}
	for _, x := range rep.Transfer {
		if x.Entries == 0 || x.Bytes < x.ValueBytes || x.ExportMBps <= 0 || x.ImportMBps <= 0 {
			t.Errorf("transfer on %s: %+v", x.Store, x)
		}
	}
	for _, name := range []string{"throughput-get.png", "latency-put-small.png"} {
		if _, err := os.Stat(filepath.Join(dir, "plots", name)); err != nil {
			t.Errorf("plot %s: %v", name, err)
		}
	}
}

// TestSideBySide loads our server and an external one (here another vss-server, on a
// database of its own in the same durable PostgreSQL) cell by cell, and checks that
// both land in the report under their names with what can be read of each: the
// external server's CPU and RSS from its pid, and the WAL flushes of both databases.
func TestSideBySide(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "vss-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/govss/vss/cmd/vss-server")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build vss-server: %v\n%s", err, out)
	}
	admin, stopPG, err := pgtest.StartClusterWith(pgtest.ClusterOptions{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stopPG()
	otherDB := strings.Replace(admin, "/postgres?", "/other?", 1)
	conn, err := pgx.Connect(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(context.Background(), "CREATE DATABASE other")
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	other := exec.Command(bin, "--listen", addr, "--auth", "signature", "--log-level", "warn",
		"--database-url", otherDB)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	waitReady(t, "http://"+addr+"/readyz")

	rep, out := runBench(t, dir, "--smoke", "--stores", "postgres", "--bindings", "vss-http", "--scenarios", "put-small,get",
		"--direct=false", "--memory=false", "--server-bin", bin, "--postgres-url", admin,
		"--target", "http://"+addr+"/vss", "--target-name", "other", "--server-pid", strconv.Itoa(other.Process.Pid),
		"--target-db-url", otherDB, "--side-by-side")
	if len(rep.Postgres) != 2 || !strings.Contains(rep.Postgres[0], "fsync=on") || !strings.Contains(rep.Postgres[0], "synchronous_commit=on") {
		t.Errorf("PostgreSQL descriptions: %q, want ours and other's, with fsync and synchronous_commit on", rep.Postgres)
	}
	seen := map[string]int{}
	for _, r := range rep.Results {
		seen[r.Server+" "+r.Scenario]++
		if r.Ops == 0 || r.Errors > 0 {
			t.Errorf("%s at %d: %d ops, %d errors (%s)", r.Label(), r.Conc, r.Ops, r.Errors, r.FirstError)
		}
		if r.Store != "postgres" || r.Binding != "vss-http" {
			t.Errorf("%s: store %q, binding %q; want both servers filed under postgres/vss-http", r.Label(), r.Store, r.Binding)
		}
		if r.ServerCPUPer1k < 0 || r.ServerRSSMB <= 0 {
			t.Errorf("%s %s: server CPU %v, RSS %v; want both read from /proc", r.Label(), r.Scenario, r.ServerCPUPer1k, r.ServerRSSMB)
		}
		if r.WALSyncsPerOp < 0 || r.WALWritesPerOp < 0 {
			t.Errorf("%s %s: WAL flushes %v, writes %v per op; want both read from pg_stat_wal", r.Label(), r.Scenario, r.WALSyncsPerOp, r.WALWritesPerOp)
		}
		if r.Server == "" && r.DBTripsPerOp < 0 {
			t.Errorf("ours %s: no round-trip count", r.Scenario)
		}
	}
	for _, k := range []string{" put-small", "other put-small", " get", "other get"} {
		if seen[k] != 2 { // --smoke: concurrency 1 and 4
			t.Errorf("%q: %d cells, want 2", k, seen[k])
		}
	}
	if !strings.Contains(out, "other/vss-http") {
		t.Error("the table does not label the other server's rows")
	}
}

// runBench runs vss-bench with args, saving its results and plots in dir, and returns
// the report it saved and what it printed; a failed run fails t.
func runBench(t *testing.T, dir string, args ...string) (*bench.Report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jsonPath := filepath.Join(dir, "results.json")
	args = append(args, "--json", jsonPath, "--plot", filepath.Join(dir, "plots"))
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("vss-bench %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("output:\n%s", stdout.String())
	rep, err := bench.Load(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	return rep, stdout.String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 30s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
