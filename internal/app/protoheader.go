package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govss/vss/server"
)

// Go's HTTP server answers some requests without calling a handler: request headers over
// the limit (431), a malformed request or Host header (400), an unsupported HTTP version
// (505) or transfer encoding (501), an Expect other than 100-continue (417), and plain
// HTTP sent to the TLS port (400). Deployed VSS clients stop retrying a response that
// lacks the protocol version header, so the connections of the HTTP/1 server are wrapped
// (headerConn) to add the header to any response head written while no handler runs on
// the connection, and TLS is terminated in the listener (tlsListener) so that the
// wrapper sees HTTP/1 in the clear.
//
// HTTP/2 (cleartext or TLS) is passed through untouched: Go's HTTP/2 server answers a
// header list over the limit with a 431 of its own, HPACK-encoded, which cannot carry the
// header; every other HTTP/2 protocol error is a stream or connection reset, not a
// response.

var protocolHeaderLine = []byte(server.ProtocolVersionHeader + ": " + server.ProtocolVersion + "\r\n")

// headerConn is a server connection that adds the protocol version header to response
// heads written while none of its requests is in a handler (see trackHandlers).
type headerConn struct {
	net.Conn
	// handlers counts the handlers running for requests of this connection.
	handlers atomic.Int32
	// h2 is set once the client sent the HTTP/2 connection preface; the connection is
	// then passed through.
	h2    atomic.Bool
	first sync.Once
}

func (c *headerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.first.Do(func() {
			if bytes.HasPrefix(p[:n], []byte("PRI ")) {
				c.h2.Store(true)
			}
		})
	}
	return n, err
}

func (c *headerConn) Write(p []byte) (int, error) {
	if c.h2.Load() || c.handlers.Load() > 0 {
		return c.Conn.Write(p)
	}
	out, ok := withProtocolHeader(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets the HTTP server half-close the connection after a 431, as it does on
// a bare TCP or TLS connection.
func (c *headerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// withProtocolHeader returns p with the protocol version header added after its status
// line when p starts with an HTTP/1 response head that does not carry it.
func withProtocolHeader(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.")) {
		return nil, false
	}
	end := bytes.Index(p, []byte("\r\n\r\n"))
	line := bytes.Index(p, []byte("\r\n"))
	if end < 0 || line < 0 {
		return nil, false
	}
	if bytes.Contains(bytes.ToLower(p[:end]), bytes.ToLower(protocolHeaderLine[:len(server.ProtocolVersionHeader)+1])) {
		return nil, false
	}
	out := make([]byte, 0, len(p)+len(protocolHeaderLine))
	out = append(out, p[:line+2]...)
	out = append(out, protocolHeaderLine...)
	return append(out, p[line+2:]...), true
}

// tlsHeaderConn is a headerConn over TLS; ConnectionState lets the HTTP server fill in
// Request.TLS.
type tlsHeaderConn struct{ *headerConn }

func (c tlsHeaderConn) ConnectionState() tls.ConnectionState {
	return c.Conn.(*tls.Conn).ConnectionState()
}

type headerConnKey struct{}

type limitedConnKey struct{}

// connContext is http.Server.ConnContext: it lets trackHandlers find the connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := limitedConnOf(c); lc != nil {
		ctx = context.WithValue(ctx, limitedConnKey{}, lc)
	}
	switch hc := c.(type) {
	case *headerConn:
		return context.WithValue(ctx, headerConnKey{}, hc)
	case tlsHeaderConn:
		return context.WithValue(ctx, headerConnKey{}, hc.headerConn)
	}
	return ctx
}

// trackHandlers marks a request's connection as in a handler while next serves it, so
// that what the handler writes is passed through unchanged, and as served, so that
// connLimiter never pushes it out. It must be the outermost
// handler.
func trackHandlers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc, ok := r.Context().Value(limitedConnKey{}).(*limitedConn); ok {
			lc.served.Store(true) // a client, not a stalled connection (see connLimiter)
		}
		if hc, ok := r.Context().Value(headerConnKey{}).(*headerConn); ok {
			hc.handlers.Add(1)
			defer hc.handlers.Add(-1)
		}
		next.ServeHTTP(w, r)
	})
}

// plainListener wraps every accepted connection in a headerConn.
type plainListener struct{ net.Listener }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &headerConn{Conn: c}, nil
}

// tlsListener terminates TLS for the HTTP server. Handshakes run concurrently, each
// bounded by timeout; a connection that negotiated HTTP/2 is handed over as the
// *tls.Conn (the HTTP server serves HTTP/2 on it), any other in a tlsHeaderConn. A
// client that sends plain HTTP gets a 400 that carries the protocol version header.
type tlsListener struct {
	inner   net.Listener
	config  *tls.Config
	timeout time.Duration
	log     *slog.Logger

	ready     chan acceptResult
	done      chan struct{}
	closeOnce sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newTLSListener(inner net.Listener, config *tls.Config, timeout time.Duration, log *slog.Logger) *tlsListener {
	config = config.Clone()
	config.NextProtos = []string{"h2", "http/1.1"}
	l := &tlsListener{inner: inner, config: config, timeout: timeout, log: log,
		ready: make(chan acceptResult), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case l.ready <- acceptResult{err: err}:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.handshake(c)
	}
}

// plainHTTPToTLS is the answer to a client that sent plain HTTP to the TLS port.
const plainHTTPToTLS = "HTTP/1.0 400 Bad Request\r\n" + server.ProtocolVersionHeader + ": " + server.ProtocolVersion +
	"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.config)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_ = raw.SetWriteDeadline(time.Now().Add(l.timeout))
			_, _ = io.WriteString(raw, plainHTTPToTLS)
			l.log.Debug("TLS handshake failed: the client sent plain HTTP", "remote", raw.RemoteAddr().String())
		} else {
			l.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		}
		_ = raw.Close()
		return
	}
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = tlsHeaderConn{&headerConn{Conn: tc}}
	}
	select {
	case l.ready <- acceptResult{c: c}:
	case <-l.done:
		_ = c.Close()
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of an HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE", "TRACE":
		return true
	}
	return false
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.ready:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.inner.Close()
}

func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }
