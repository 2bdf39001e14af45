package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// TestAbusiveClients opens slow-loris connections that dribble their headers, 1,000
// idle keep-alive connections, and keeps sending oversized headers and oversized bodies,
// while a probe client writes and reads: every probe request succeeds within 2 s (the
// latencies before and during are printed, not asserted), the oversized requests get 431
// and 413, and the server hangs up on the slow-loris connections once
// --read-header-timeout has passed.
func TestAbusiveClients(t *testing.T) {
	const maxBody = 1 << 20
	const headerTimeout = 2 * time.Second
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature",
		"--max-body-bytes", fmt.Sprint(maxBody), "--read-header-timeout", headerTimeout.String(),
		// Every connection here comes from 127.0.0.1, more than one address may hold by default.
		"--max-connections-per-address", "4096")
	ctx := testContext(t, 2*time.Minute)
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	probe := &legacyAPI{base: srv.url(), http: newHTTPClient(10 * time.Second), auth: signer(key)}

	baseline := probeLatencies(ctx, t, probe, 200)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var attacks attackStats
	// Slow loris: a request line, then one header byte every 200 ms.
	for range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); slowLoris(srv.addr, stop, &attacks) }()
	}
	// 1,000 idle keep-alive connections, each after one request.
	idle := openIdle(t, srv.addr, 1000)
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// Oversized headers and bodies, over and over.
	for range 3 {
		wg.Add(2)
		go func() { defer wg.Done(); oversizedHeaders(t, srv.url(), stop, &attacks) }()
		go func() { defer wg.Done(); oversizedBodies(t, srv.url(), maxBody, key, stop, &attacks) }()
	}
	time.Sleep(300 * time.Millisecond) // let the attacks get going

	during := probeLatencies(ctx, t, probe, 150)
	// Every slow-loris connection lives past the header timeout.
	waitFor(t, 3*headerTimeout, "the server to hang up on every slow-loris connection", func() bool { return attacks.lorisClosed.Load() >= 100 })
	close(stop)
	wg.Wait()

	t.Logf("probe latency before: p50 %v p99 %v max %v", pct(baseline, 50), pct(baseline, 99), pct(baseline, 100))
	t.Logf("probe latency during: p50 %v p99 %v max %v (100 slow-loris connections, %d idle keep-alive connections, "+
		"%d oversized headers answered 431, %d oversized bodies answered 413, %d slow-loris connections closed by the server)",
		pct(during, 50), pct(during, 99), pct(during, 100), len(idle), attacks.headers.Load(), attacks.bodies.Load(), attacks.lorisClosed.Load())
	t.Logf("server peak RSS %.1f MiB; probe: %d/%d round trips succeeded during the attacks, p99 %v",
		float64(srv.peakRSS(t))/(1<<20), len(during), len(during), pct(during, 99))
	for _, s := range [][]time.Duration{baseline, during} {
		if m := pct(s, 100); m > 2*time.Second {
			t.Errorf("a probe request took %v, want at most 2s", m)
		}
	}
	if attacks.headers.Load() == 0 || attacks.bodies.Load() == 0 || attacks.loris.Load() == 0 {
		t.Errorf("the attacks did not run: %d oversized headers, %d oversized bodies, %d slow-loris bytes",
			attacks.headers.Load(), attacks.bodies.Load(), attacks.loris.Load())
	}
	// The idle connections were kept or closed by the server, never answered wrongly;
	// the server still takes new connections.
	if _, err := probe.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "probe", Key: "global_version"}); err != nil {
		t.Errorf("after the attacks: %v", err)
	}
}

type attackStats struct {
	headers, bodies, loris, lorisClosed atomic.Int64
}

// probeLatencies writes and reads back n times and returns each round trip's latency;
// every request must succeed.
func probeLatencies(ctx context.Context, t *testing.T, c api, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := range n {
		v := fmt.Appendf(nil, "value %d", i)
		start := time.Now()
		if err := c.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "probe",
			TransactionItems: []*vssv1.KeyValue{{Key: "k", Version: -1, Value: v}}}); err != nil {
			t.Fatalf("probe put %d: %v", i, err)
		}
		res, err := c.GetObject(ctx, &vssv1.GetObjectRequest{StoreId: "probe", Key: "k"})
		if err != nil {
			t.Fatalf("probe get %d: %v", i, err)
		}
		out = append(out, time.Since(start))
		if !bytes.Equal(res.GetValue().GetValue(), v) {
			t.Fatalf("probe %d: read %q, want %q", i, res.GetValue().GetValue(), v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return out
}

// pct returns the p-th percentile of ds (100: the maximum).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}

// slowLoris connects and sends a request's headers one byte every 200 ms until stop
// or until the server hangs up, then connects again. It counts the hang-ups.
func slowLoris(addr string, stop <-chan struct{}, st *attackStats) {
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				continue
			}
		}
		header := "POST /vss/getObject HTTP/1.1\r\nHost: vss\r\nX-Padding: " + strings.Repeat("a", 10000)
		_, err = io.WriteString(conn, header[:40])
		for i := 40; err == nil && i < len(header); i++ {
			select {
			case <-stop:
				conn.Close()
				return
			case <-time.After(200 * time.Millisecond):
			}
			_, err = conn.Write([]byte{header[i]})
			st.loris.Add(1)
		}
		if err != nil {
			st.lorisClosed.Add(1)
		}
		conn.Close()
	}
}

// openIdle opens n connections, sends one keep-alive request on each and leaves them
// open.
func openIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for i := range n {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		conns = append(conns, conn)
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: vss\r\n\r\n"); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Close {
			t.Fatalf("idle connection %d: status %d, close %v", i, res.StatusCode, res.Close)
		}
	}
	return conns
}

// oversizedHeaders sends requests with 1 MiB of headers until stop; each must get 431.
func oversizedHeaders(t *testing.T, base string, stop <-chan struct{}, st *attackStats) {
	hc := newHTTPClient(10 * time.Second)
	big := strings.Repeat("x", 1<<20)
	for {
		select {
		case <-stop:
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/vss/getObject", nil)
		req.Header.Set("X-Big", big)
		res, err := hc.Do(req)
		if err != nil {
			continue // the server may hang up while the headers are still being sent
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("1 MiB of headers: status %d, want 431", res.StatusCode)
			return
		}
		st.headers.Add(1)
		time.Sleep(10 * time.Millisecond)
	}
}

// oversizedBodies posts bodies twice the limit to the VSS HTTP API until stop; each
// must get 413.
func oversizedBodies(t *testing.T, base string, limit int, key *secp256k1.PrivateKey, stop <-chan struct{}, st *attackStats) {
	hc := newHTTPClient(10 * time.Second)
	auth := signer(key)
	body := bytes.Repeat([]byte{0x0a}, 2*limit)
	for {
		select {
		case <-stop:
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/vss/putObjects", bytes.NewReader(body))
		req.Header.Set("Authorization", auth())
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := hc.Do(req)
		if err != nil {
			continue // the server may hang up while the body is still being sent
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a body of %d bytes: status %d, want 413", len(body), res.StatusCode)
			return
		}
		st.bodies.Add(1)
		time.Sleep(10 * time.Millisecond)
	}
}
