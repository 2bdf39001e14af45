package faulttest

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/internal/pgtest"
)

// TestPostgresRestart stops PostgreSQL under load, immediately (a crash as clients see
// it) and then with a fast shutdown. While it is down the server stays up and answers
// with retryable errors; once it is back the server serves again by itself within 2 s;
// and every acknowledged write is there afterwards.
func TestPostgresRestart(t *testing.T) {
	cluster := pgtest.NewCluster(t)
	srv := startServer(t, "--database-url", cluster.URL(), "--auth", "signature")
	l := startLoad(newWallets(t, 8, srv.url(), 1))
	defer l.stop()
	probe := newProbe(t, srv.url())

	for _, immediate := range []bool{true, false} {
		time.Sleep(1500 * time.Millisecond)
		before := l.applied()
		cluster.Stop(immediate)
		t.Logf("PostgreSQL stopped (immediate %v) after %d acknowledged writes", immediate, before)
		probe.whileDown(t, 1500*time.Millisecond)
		if !srv.alive() {
			t.Fatal("vss-server exited while PostgreSQL was down")
		}
		if err := cluster.Start(); err != nil {
			t.Fatal(err)
		}
		up := time.Now() // Start returns once PostgreSQL accepts connections
		took := probe.untilServing(t, 10*time.Second)
		t.Logf("PostgreSQL accepts connections: the first successful VSS request %v later", took.Round(time.Millisecond))
		if took > 2*time.Second {
			t.Errorf("the server took %v after PostgreSQL came back to serve again, want at most 2s", took)
		}
		waitFor(t, 10*time.Second, "the load to resume", func() bool { return l.applied() > before+50 })
		t.Logf("load resumed: %d acknowledged writes %v after PostgreSQL came back", l.applied()-before, time.Since(up).Round(time.Millisecond))
	}
	time.Sleep(500 * time.Millisecond)
	l.stop()
	l.verify(t)

	// The server saw it all: two restarts are two changes of primary (the same server,
	// started again), and the two stretches without a database, each longer than the
	// 1.5 s of probes above, are counted as unavailable.
	m := scrapeMetrics(t, srv.url())
	t.Logf("metrics: %s %v, %s %v, %s %v, %s %v", app.MetricDBUp, m[app.MetricDBUp],
		app.MetricDBPrimaryChanges, m[app.MetricDBPrimaryChanges], app.MetricDBConnectionErrors, m[app.MetricDBConnectionErrors],
		app.MetricDBUnavailableSeconds, m[app.MetricDBUnavailableSeconds])
	if m[app.MetricDBUp] != 1 || m[app.MetricDBPrimaryChanges] != 2 || m[app.MetricDBConnectionErrors] < 2 || m[app.MetricDBUnavailableSeconds] < 3 {
		t.Errorf("want the database up, 2 primary changes, connection errors and at least 3 s unavailable")
	}
	if body := probe.readyz(t); !strings.HasPrefix(body, "ok\ndatabase: 2 primary changes seen, ") {
		t.Errorf("/readyz after the restarts: %q", body)
	}
}

// scrapeMetrics reads the server's /metrics and returns the value of every series
// without labels.
func scrapeMetrics(t *testing.T, base string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for line := range strings.Lines(getBody(t, http.DefaultClient, base+"/metrics")) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m
}

// probe is a client of its own (its own user and store) that checks how the server
// answers while the database is down and when it serves again.
type probe struct {
	legacy  *legacyAPI
	connect *connectAPI
	http    *http.Client
	base    string
}

func newProbe(t testing.TB, base string) *probe {
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(5 * time.Second)
	return &probe{
		legacy:  &legacyAPI{base: base, http: hc, auth: signer(key)},
		connect: newConnectAPI(base, hc, signer(key)),
		http:    hc,
		base:    base,
	}
}

// whileDown checks for d that every request fails the retryable way: the VSS HTTP API
// with 500 and INTERNAL_SERVER_EXCEPTION, Connect with unavailable; /healthz still
// answers and /readyz reports the database unreachable.
func (p *probe) whileDown(t *testing.T, d time.Duration) {
	t.Helper()
	ctx := testContext(t, time.Minute)
	put := &vssv1.PutObjectRequest{StoreId: "probe", TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: []byte("v")}}}
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		err := p.legacy.PutObjects(ctx, put)
		se, ok := err.(*serverError)
		if !ok || se.status != http.StatusInternalServerError || se.code != vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION {
			t.Fatalf("VSS HTTP put while PostgreSQL is down: %v, want 500 INTERNAL_SERVER_EXCEPTION", err)
		}
		_, err = p.connect.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "probe", Key: "k"})
		se, ok = err.(*serverError)
		if !ok || se.connectCode != connect.CodeUnavailable || se.code != vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION {
			t.Fatalf("Connect get while PostgreSQL is down: %v, want unavailable with INTERNAL_SERVER_EXCEPTION", err)
		}
		if code := p.status(ctx, "/healthz"); code != http.StatusOK {
			t.Fatalf("/healthz while PostgreSQL is down: %d, want 200", code)
		}
		if code := p.status(ctx, "/readyz"); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz while PostgreSQL is down: %d, want 503", code)
		}
		if body := p.readyz(t); !strings.HasPrefix(body, "database unreachable\ndatabase: unavailable for ") {
			t.Fatalf("/readyz while PostgreSQL is down says %q", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d probes while PostgreSQL was down: each answered with a retryable error", n)
}

// untilServing sends VSS requests every 10 ms until one succeeds and returns how long
// that took.
func (p *probe) untilServing(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	ctx := testContext(t, time.Minute)
	start := time.Now()
	for time.Since(start) < limit {
		_, err := p.legacy.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "probe", Key: "global_version"})
		if err == nil {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the server did not serve again within %v after PostgreSQL came back", limit)
	return 0
}

// readyz returns the body of /readyz.
func (p *probe) readyz(t *testing.T) string {
	t.Helper()
	return getBody(t, p.http, p.base+"/readyz")
}

// getBody returns the body of a GET of url, whatever its status.
func getBody(t *testing.T, hc *http.Client, url string) string {
	t.Helper()
	res, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (p *probe) status(ctx context.Context, path string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return 0
	}
	res, err := p.http.Do(req)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
	}
}
