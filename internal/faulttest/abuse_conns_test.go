package faulttest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestSilentConnectionsAreCut: from one address, an attacker keeps 90 connections open
// that send nothing useful (fewer than --max-connections-per-address, so that none is
// pushed out by a newer one; TestMemoryWithoutCredentialsIsBounded floods past the
// caps): plain TCP connections that never send a byte, HTTP/2 (h2c) connections that
// send the preface and then nothing, and HTTP/2 connections that stall in the middle of
// a header block, and opens a new one whenever one ends. The server closes each one
// within a few --read-header-timeouts (an HTTP/2 connection that goes silent is pinged,
// and closed when the ping goes unanswered), and a user on another address, who opens
// a new connection for every request, keeps writing throughout.
func TestSilentConnectionsAreCut(t *testing.T) {
	const attackers = 90
	const headerTimeout = time.Second
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature",
		"--read-header-timeout", headerTimeout.String(), "--max-connections-per-address", "100")
	ctx := testContext(t, 2*time.Minute)

	// The bystander connects from 127.0.0.2, another address than the attacker's.
	by := newBystanderElsewhere(t, srv)
	by.start(ctx)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened, closedAtOnce, held, stalled atomic.Int64
	var longest atomic.Int64
	kinds := []func(net.Conn) error{
		func(net.Conn) error { return nil }, // silent TCP
		func(c net.Conn) error { // the HTTP/2 preface and SETTINGS, then silence
			if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
				return err
			}
			return http2.NewFramer(c, nil).WriteSettings()
		},
		func(c net.Conn) error { // a header block that never ends
			if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
				return err
			}
			fr := http2.NewFramer(c, nil)
			if err := fr.WriteSettings(); err != nil {
				return err
			}
			var block bytes.Buffer
			enc := hpack.NewEncoder(&block)
			for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/vss/putObjects"}, {":authority", "vss"}} {
				_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: false})
		},
	}
	for i := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", srv.addr)
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				opened.Add(1)
				start := time.Now()
				if kinds[i%3](c) != nil {
					closedAtOnce.Add(1)
					c.Close()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				// Read (and discard) whatever the server sends until it hangs up.
				done := make(chan struct{})
				go func() { _, _ = io.Copy(io.Discard, c); close(done) }()
				select {
				case <-done:
				case <-stop:
					c.Close()
					<-done
					return
				}
				c.Close()
				d := time.Since(start)
				switch {
				case d < 200*time.Millisecond:
					closedAtOnce.Add(1)
					time.Sleep(10 * time.Millisecond)
				default:
					held.Add(1)
					if i%3 == 2 {
						stalled.Add(1)
					}
					storeMax(&longest, int64(d))
				}
			}
		}()
	}
	time.Sleep(10 * time.Second)
	close(stop)
	wg.Wait()
	by.finish(t, srv, "silent connections", 0.01)
	t.Logf("attacker: %d connections opened, %d closed by the server within 200 ms, %d held then cut "+
		"(%d of them stalled in a header block); the longest lived %v",
		opened.Load(), closedAtOnce.Load(), held.Load(), stalled.Load(), time.Duration(longest.Load()).Round(time.Millisecond))
	if stalled.Load() == 0 {
		t.Errorf("no connection stalled in a header block was cut within the test's 10 s")
	}
	if d := time.Duration(longest.Load()); d > 4*headerTimeout {
		t.Errorf("a silent connection lived %v, want at most %v", d, 4*headerTimeout)
	}
}

// TestMemoryWithoutCredentialsIsBounded: with the default flags, 16,000 connections from
// 24 addresses send a request's headers and stall, half with nearly --max-header-bytes,
// half with more (which the server answers 431), four times --max-connections in all.
// The server's peak RSS stays within the bound the README documents (450 MiB above its
// idle footprint, garbage included), and a user on another address who opens a new
// connection for every request keeps getting in, because a new connection pushes out the
// oldest one that never sent a whole request.
func TestMemoryWithoutCredentialsIsBounded(t *testing.T) {
	const attackConns = 16000
	const bound = 450 << 20
	srv := startServer(t, "--database-url", "memory:", "--auth", "signature")
	ctx := testContext(t, 2*time.Minute)
	idle := srv.peakRSS(t)

	by := newBystanderElsewhere(t, srv)
	by.start(ctx)

	heads := []string{
		"POST /vss/putObjects HTTP/1.1\r\nHost: vss\r\nX-Padding: " + strings.Repeat("p", 16000),
		"POST /vss/putObjects HTTP/1.1\r\nHost: vss\r\nX-Padding: " + strings.Repeat("p", 60000),
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	opened := 0
	for i := range attackConns {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%24))}}
		c, err := d.Dial("tcp", srv.addr)
		if err != nil {
			continue
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, heads[i%2]); err == nil {
			opened++
		}
	}
	time.Sleep(3 * time.Second)
	by.finish(t, srv, "stalled headers on every connection", 0.01)
	peak := srv.peakRSS(t)
	t.Logf("%d connections sent %d or %d bytes of headers; server peak RSS %.0f MiB, %.0f MiB above idle (bound %d MiB)",
		opened, len(heads[0]), len(heads[1]), float64(peak)/(1<<20), float64(peak-idle)/(1<<20), bound>>20)
	if peak-idle > bound {
		t.Errorf("the server's peak RSS grew by %d MiB, more than the documented %d MiB", (peak-idle)>>20, bound>>20)
	}
}

// newBystanderElsewhere returns a bystander that connects from 127.0.0.2, another
// address than an attacker's on 127.0.0.1, and opens a new connection for every request,
// so that it has to get past the connection caps every time.
func newBystanderElsewhere(t *testing.T, srv *serverProc) *bystander {
	t.Helper()
	key, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient(10 * time.Second)
	tr := hc.Transport.(*http.Transport)
	tr.DialContext = (&net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext
	tr.DisableKeepAlives = true
	return newBystander(t, srv, &legacyAPI{base: srv.url(), http: hc, auth: signer(key)})
}
