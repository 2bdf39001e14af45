package app

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
)

// Defaults of the connection caps.
const (
	// DefaultMaxConnections caps the open connections of the main listener. An idle
	// HTTP/1.1 connection costs the server about 10 KiB and an idle HTTP/2 one a few
	// times that, so the cap bounds what connections alone can hold to a few hundred MiB.
	DefaultMaxConnections = 16384
	// DefaultMaxConnectionsPerAddress caps the open connections of one client address
	// (an IPv4 address, or an IPv6 /64).
	DefaultMaxConnectionsPerAddress = 2048
)

// connLimiter is a listener that holds at most total open connections, and at most
// perAddr from one client address (IPv6: its /64). A connection over a cap is closed as
// soon as it is accepted, before the server reads a byte, so no number of connections,
// silent or not, takes more than their share of the server's memory and file
// descriptors.
type connLimiter struct {
	net.Listener
	total, perAddr int // 0: no cap
	log            *slog.Logger
	onRefuse       func(reason string)

	mu     sync.Mutex
	open   int
	byAddr map[netip.Addr]int
}

// limitConns wraps l with the caps (0 or less: none). onRefuse, if set, is called with
// "total" or "address" for every connection closed over a cap.
func limitConns(l net.Listener, total, perAddr int, log *slog.Logger, onRefuse func(reason string)) net.Listener {
	if total <= 0 && perAddr <= 0 {
		return l
	}
	return &connLimiter{Listener: l, total: max(total, 0), perAddr: max(perAddr, 0), log: log, onRefuse: onRefuse,
		byAddr: make(map[netip.Addr]int)}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := connAddr(c)
		if reason := l.take(addr); reason != "" {
			_ = c.Close()
			if l.onRefuse != nil {
				l.onRefuse(reason)
			}
			l.log.Debug("connection refused: too many open connections", "remote", c.RemoteAddr().String(), "cap", reason)
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.give(addr) }}, nil
	}
}

// take counts a new connection from addr, or returns which cap it is over.
func (l *connLimiter) take(addr netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.open >= l.total {
		return "total"
	}
	if l.perAddr > 0 && l.byAddr[addr] >= l.perAddr {
		return "address"
	}
	l.open++
	l.byAddr[addr]++
	return ""
}

func (l *connLimiter) give(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// connAddr is the cap key of c's client: its IP address, for IPv6 its /64 network.
func connAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// limitedConn gives its place back once, when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the connection, as the HTTP server does before it closes one
// it answered with an error.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
