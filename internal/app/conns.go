package app

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govss/vss/server"
)

// Defaults of the connection caps.
const (
	// DefaultMaxConnections caps the open connections of the main listener. Measured
	// on loopback: an idle HTTP/1.1 connection holds about 8 KiB of the server's memory,
	// a silent HTTP/2 one about 25 KiB, and one in the middle of a header block of
	// nearly --max-header-bytes (16 KiB) about 44 KiB; so connections without
	// credentials hold at most about 180 MiB, and with the garbage they leave between
	// two collections and their goroutines' stacks the process grows by at most about
	// 450 MiB.
	DefaultMaxConnections = 4096
	// DefaultMaxConnectionsPerAddress caps the open connections of one client address
	// (an IPv4 address, or an IPv6 /64): an eighth of the total, so that a flood needs
	// eight addresses to fill it, and still room for many wallets behind one NAT.
	DefaultMaxConnectionsPerAddress = DefaultMaxConnections / 8
)

// connLimiter is a listener that holds at most total open connections, and at most
// perAddr from one client address (IPv6: its /64). When a new connection would pass a
// cap, the oldest connection under that cap on which no request has reached a handler
// yet (one stalled in its headers or its TLS handshake, or silent since it connected)
// is closed to make room, so that a flood of such connections cannot keep other
// clients out: a client's connection is at risk only until its first request arrives,
// and only from as many newer connections as the cap holds, while its working and idle
// keep-alive connections are never pushed out. A flood from one address pushes out only
// that address's connections, since its own cap is reached first. When there is no
// connection to push out, the new one is closed as soon as it is accepted. Either way
// no number of connections takes more than the caps' worth of memory and file
// descriptors.
type connLimiter struct {
	net.Listener
	total, perAddr int // 0: no cap
	log            *slog.Logger

	mu     sync.Mutex
	open   map[*limitedConn]struct{}
	byAddr map[string]map[*limitedConn]struct{}
}

// limitConns wraps l with the caps (0 or less: none).
func limitConns(l net.Listener, total, perAddr int, log *slog.Logger) net.Listener {
	if total <= 0 && perAddr <= 0 {
		return l
	}
	return &connLimiter{Listener: l, total: max(total, 0), perAddr: max(perAddr, 0), log: log,
		open: make(map[*limitedConn]struct{}), byAddr: make(map[string]map[*limitedConn]struct{})}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, limiter: l, addr: server.ClientKey(c.RemoteAddr().String()), opened: time.Now()}
		if refused := l.take(lc); refused != "" {
			_ = c.Close()
			l.log.Debug("connection refused: too many open connections", "remote", c.RemoteAddr().String(), "cap", refused)
			continue
		}
		return lc, nil
	}
}

// take counts lc in, pushing out the oldest connection without a request under a cap
// it would pass; it returns which cap refused lc, if one did.
func (l *connLimiter) take(lc *limitedConn) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var evict []*limitedConn
	if l.perAddr > 0 && len(l.byAddr[lc.addr]) >= l.perAddr {
		victim := oldestUnserved(l.byAddr[lc.addr], nil)
		if victim == nil {
			return "address"
		}
		evict = append(evict, victim)
	}
	if l.total > 0 && len(l.open)-len(evict) >= l.total {
		victim := oldestUnserved(l.open, evict)
		if victim == nil {
			return "total"
		}
		evict = append(evict, victim)
	}
	for _, v := range evict {
		l.remove(v)
		go v.Close() // its release finds it removed already
	}
	l.open[lc] = struct{}{}
	if l.byAddr[lc.addr] == nil {
		l.byAddr[lc.addr] = make(map[*limitedConn]struct{})
	}
	l.byAddr[lc.addr][lc] = struct{}{}
	return ""
}

// oldestUnserved returns the oldest connection of set, other than those in not, on
// which no request has reached a handler, or nil.
func oldestUnserved(set map[*limitedConn]struct{}, not []*limitedConn) *limitedConn {
	var oldest *limitedConn
	for c := range set {
		if c.served.Load() || (len(not) > 0 && not[0] == c) {
			continue
		}
		if oldest == nil || c.opened.Before(oldest.opened) {
			oldest = c
		}
	}
	return oldest
}

// remove forgets c; l.mu must be held.
func (l *connLimiter) remove(c *limitedConn) {
	if _, ok := l.open[c]; !ok {
		return
	}
	delete(l.open, c)
	if set := l.byAddr[c.addr]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(l.byAddr, c.addr)
		}
	}
}

func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	l.remove(c)
	l.mu.Unlock()
}

// limitedConn is a connection counted by a connLimiter; it gives its place back once,
// when it is closed.
type limitedConn struct {
	net.Conn
	limiter *connLimiter
	addr    string // server.ClientKey of its client
	opened  time.Time
	// served is set once a request of the connection reaches a handler (markServed).
	served atomic.Bool
	once   sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.limiter.release(c) })
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

// limitedConnOf finds the limitedConn under a connection the HTTP server serves (a
// headerConn, a TLS connection, or one over the other), or nil.
func limitedConnOf(c net.Conn) *limitedConn {
	for range 4 {
		switch cc := c.(type) {
		case *limitedConn:
			return cc
		case *headerConn:
			c = cc.Conn
		case tlsHeaderConn:
			c = cc.headerConn.Conn
		case *tls.Conn:
			c = cc.NetConn()
		default:
			return nil
		}
	}
	return nil
}
