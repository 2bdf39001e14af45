package bench

import (
	"bufio"
	"net"
	"testing"
)

// TestProxyCountsRoundTrips sends requests through the proxy to an echo server: each
// request written in several pieces before the reply is read is one round trip.
func TestProxyCountsRoundTrips(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	p, err := newProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for range 3 {
		for _, piece := range []string{"hel", "lo\n"} {
			if _, err := c.Write([]byte(piece)); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := r.ReadString('\n'); err != nil || got != "hello\n" {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}
	if got := p.trips.Load(); got != 3 {
		t.Errorf("round trips = %d, want 3", got)
	}
	if got := p.toDB.Load(); got != 18 {
		t.Errorf("bytes to the server = %d, want 18", got)
	}
}
