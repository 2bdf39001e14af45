package faulttest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// peakRSS is the server process's peak resident set size so far (VmHWM), in bytes.
func (s *serverProc) peakRSS(t testing.TB) int64 {
	t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if cmd == nil {
		t.Fatal("peakRSS: the server is not running")
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatalf("peakRSS: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("peakRSS: %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("peakRSS: no VmHWM in /proc/%d/status", cmd.Process.Pid)
	return 0
}

// bystander is an honest user who keeps writing and reading back while an attack runs.
// Its success rate and latencies are what an attack must not spoil.
type bystander struct {
	c    api
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	latencies []time.Duration
	failures  []error
}

// newBystander returns a bystander using a fresh signature identity on the VSS HTTP API
// of srv (or, when c is not nil, that client).
func newBystander(t testing.TB, srv *serverProc, c api) *bystander {
	t.Helper()
	if c == nil {
		key, err := secp256k1.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		c = &legacyAPI{base: srv.url(), http: newHTTPClient(10 * time.Second), auth: signer(key)}
	}
	return &bystander{c: c}
}

// start runs the bystander's put-then-get loop until stop is called, one round trip
// every few milliseconds.
func (b *bystander) start(ctx context.Context) {
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(b.done)
		for i := 0; ; i++ {
			select {
			case <-b.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			v := fmt.Appendf(nil, "bystander %d", i)
			start := time.Now()
			err := b.c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "bystander",
				TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: v}}})
			if err == nil {
				_, err = b.c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "bystander", Key: "k"})
			}
			b.mu.Lock()
			if err != nil {
				b.failures = append(b.failures, err)
			} else {
				b.latencies = append(b.latencies, time.Since(start))
			}
			b.mu.Unlock()
		}
	}()
}

// finish stops the loop, prints the bystander's success rate and p99 together with the
// server's peak RSS under the attack's name, and fails t when the bystander failed
// more than maxFailRate of its round trips or made none.
func (b *bystander) finish(t testing.TB, srv *serverProc, attack string, maxFailRate float64) {
	t.Helper()
	close(b.stop)
	<-b.done
	b.mu.Lock()
	defer b.mu.Unlock()
	ok, failed := len(b.latencies), len(b.failures)
	total := ok + failed
	rate := 0.0
	if total > 0 {
		rate = float64(ok) / float64(total)
	}
	p99 := time.Duration(0)
	if ok > 0 {
		p99 = pct(b.latencies, 99)
	}
	t.Logf("%s: server peak RSS %.1f MiB; bystander %d/%d round trips succeeded (%.1f%%), p99 %v",
		attack, float64(srv.peakRSS(t))/(1<<20), ok, total, 100*rate, p99)
	if total == 0 {
		t.Errorf("%s: the bystander made no round trip", attack)
		return
	}
	if 1-rate > maxFailRate {
		t.Errorf("%s: %d of %d bystander round trips failed (allowed %.1f%%); first: %v",
			attack, failed, total, 100*maxFailRate, b.failures[0])
	}
}
