package app

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestConnLimiter: a new connection over the per-address or the total cap pushes out
// the oldest connection under that cap on which no request has been served, never a
// served one; with none to push out it is closed as soon as it is accepted; a closed
// connection gives its place back.
func TestConnLimiter(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConns(inner, 3, 2, slog.New(slog.DiscardHandler))
	defer ln.Close()
	accepted := make(chan *limitedConn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.(*limitedConn)
		}
	}()
	// dial connects from the address from and returns the client's end and, when the
	// server accepted it, the server's.
	dial := func(from net.IP) (net.Conn, *limitedConn) {
		t.Helper()
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: from}}).Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case s := <-accepted:
			return c, s
		case <-time.After(300 * time.Millisecond):
			return c, nil
		}
	}
	// closedByServer reports whether the server hung up on c (rather than keeping it).
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	a, b := net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 3)
	a1, _ := dial(a)
	a2, sa2 := dial(a)
	a3, sa3 := dial(a) // over a's cap of 2: pushes out a1, the oldest
	if !closedByServer(a1) || closedByServer(a2) || closedByServer(a3) {
		t.Fatal("a third connection from one address did not push out the oldest unserved one")
	}
	b1, sb1 := dial(b)
	if closedByServer(b1) {
		t.Fatal("another address's first connection was closed")
	}
	sa2.served.Store(true) // as a request reaching a handler does
	sa3.served.Store(true)
	sb1.served.Store(true)
	b2, sb2 := dial(b) // over the total of 3, with every connection served
	if sb2 != nil || !closedByServer(b2) {
		t.Fatal("a connection over the total was kept while none could be pushed out")
	}
	if closedByServer(a2) || closedByServer(a3) || closedByServer(b1) {
		t.Fatal("a served connection was pushed out")
	}
	sa2.Close() // the server closes one of a's connections
	if b3, sb3 := dial(b); sb3 == nil || closedByServer(b3) {
		t.Fatal("a connection was refused after a place was given back")
	}
}
