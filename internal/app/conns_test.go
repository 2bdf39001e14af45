package app

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestConnLimiter: a connection over the total or the per-address cap is closed as soon
// as it is accepted while every connection under the cap is young or served; once the
// oldest unserved one is minEvictAge old, it is pushed out to make room instead, and a
// served connection never is; a closed connection gives its place back.
func TestConnLimiter(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConns(inner, 3, 2, slog.New(slog.DiscardHandler))
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from net.IP) net.Conn {
		t.Helper()
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}).Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server hung up on c (rather than keeping it).
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	a, b := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 3)
	a1, a2, a3 := dial(a), dial(a), dial(a)
	if closedByServer(a1) || closedByServer(a2) {
		t.Fatal("a connection within the caps was closed")
	}
	if !closedByServer(a3) {
		t.Fatal("a third connection from one address (cap 2) was kept")
	}
	b1, b2 := dial(b), dial(b)
	if closedByServer(b1) {
		t.Fatal("another address's first connection was closed")
	}
	if !closedByServer(b2) {
		t.Fatal("a fourth connection (total cap 3) was kept")
	}
	first := <-accepted // a1
	first.Close()       // the server closes one of a's connections
	a4 := dial(a)
	if closedByServer(a4) {
		t.Fatal("a connection was refused after a place was given back")
	}
	// a2, a4 and b1 are open; mark a4 served, as a request reaching a handler does.
	for range 3 {
		if c := <-accepted; c.(*limitedConn).Conn.LocalAddr() != nil && c.RemoteAddr().String() == a4.LocalAddr().String() {
			c.(*limitedConn).served.Store(true)
		}
	}
	time.Sleep(minEvictAge + 100*time.Millisecond)
	a5 := dial(a)
	if closedByServer(a5) {
		t.Fatal("a new connection was refused while an old one without a request (a2) could be pushed out")
	}
	if !closedByServer(a2) {
		t.Fatal("the oldest connection without a request (a2) was not pushed out")
	}
	if closedByServer(a4) {
		t.Fatal("a served connection was pushed out")
	}
	// Now a's connections are a4 (served) and a5 (young): a6 is refused.
	if a6 := dial(a); !closedByServer(a6) {
		t.Fatal("a connection over the cap was kept while none could be pushed out")
	}
}
