package app

import (
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/govss/vss/server"
)

// Defaults of LimitsConfig.
const (
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultBodyProgressBytes   = 16 << 10
	DefaultBodyProgressTimeout = 20 * time.Second
	DefaultWriteTimeout        = 2 * time.Minute
	DefaultIdleTimeout         = 2 * time.Minute
	DefaultMaxHeaderBytes      = 16 << 10
	DefaultMaxConcurrent       = 1024
	DefaultMaxConcurrentPublic = server.DefaultMaxConcurrentPublic
)

// LimitsConfig bounds what one client can make the server hold: time, connections and
// memory. The zero value of a field means its default.
//
// A fixed read timeout cannot both cut off a client that dribbles its request and let a
// phone on a slow link upload an 8 MiB value, so request bodies get a minimum transfer
// rate instead: every BodyProgressTimeout the client must have sent at least
// BodyProgressBytes more of the body (or all of it), or the connection is closed. Headers
// must arrive within ReadHeaderTimeout.
type LimitsConfig struct {
	// ReadHeaderTimeout is how long a client has to send a request's headers.
	ReadHeaderTimeout time.Duration
	// BodyProgressBytes and BodyProgressTimeout set the minimum transfer rate of request
	// bodies (see LimitsConfig). A negative BodyProgressTimeout turns the rule off.
	BodyProgressBytes   int64
	BodyProgressTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request (its headers, or its body
	// when it has one) to the end of its response; a negative value removes the bound.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits the size of a request's header block; larger ones get 431.
	MaxHeaderBytes int
	// MaxConcurrent caps the VSS calls served at once; a negative value removes the
	// cap. QueueTimeout is how long a request over a cap waits for a slot before it is
	// refused with 503 (the VSS HTTP API) or unavailable (Connect, gRPC).
	MaxConcurrent int
	QueueTimeout  time.Duration
	// MaxConcurrentPerUser caps the slots of MaxConcurrent one user holds; zero means
	// MaxConcurrent/16 (at least 1), negative no cap.
	MaxConcurrentPerUser int
	// MaxConcurrentPublic caps the requests served at once on everything reachable
	// without credentials (health, reflection, LNURL-auth, /metrics, the explorer), with
	// slots of their own; negative removes the cap. MaxConcurrentPerAddress caps the
	// share of one client address (an IPv6 /64); zero means MaxConcurrentPublic/4 (at
	// least 1), negative no cap.
	MaxConcurrentPublic     int
	MaxConcurrentPerAddress int
	// MaxUploadBytes caps the request-body bytes held by the VSS calls in flight, across
	// all users; a negative value removes the cap. MaxUploadBytesPerUser caps one
	// user's share; zero means MaxUploadBytes/8 but at least the largest body, negative
	// no cap. A call whose bytes do not fit is refused at once with 503 (unavailable).
	MaxUploadBytes        int64
	MaxUploadBytesPerUser int64
	// MaxConnections caps the open connections of the main listener, and
	// MaxConnectionsPerAddress those of one client address (IPv6: its /64); zero means
	// the default, negative no cap. A connection over a cap is closed at once.
	MaxConnections           int
	MaxConnectionsPerAddress int
}

// withDefaults returns c with every zero field set to its default.
func (c LimitsConfig) withDefaults() LimitsConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&c.BodyProgressTimeout, DefaultBodyProgressTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.BodyProgressBytes <= 0 {
		c.BodyProgressBytes = DefaultBodyProgressBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.MaxConcurrentPublic == 0 {
		c.MaxConcurrentPublic = DefaultMaxConcurrentPublic
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.MaxConnectionsPerAddress == 0 {
		c.MaxConnectionsPerAddress = DefaultMaxConnectionsPerAddress
	}
	if c.MaxUploadBytes == 0 {
		c.MaxUploadBytes = server.DefaultMaxUploadBytes
	}
	return c
}

// applyLimits sets srv's timeouts and header limit from c. The server has no ReadTimeout:
// withBodyProgress bounds the reading of bodies instead.
func applyLimits(srv *http.Server, c LimitsConfig) {
	srv.ReadHeaderTimeout = c.ReadHeaderTimeout
	srv.ReadTimeout = 0
	srv.WriteTimeout = c.WriteTimeout
	srv.IdleTimeout = c.IdleTimeout
	srv.MaxHeaderBytes = c.MaxHeaderBytes
	// An HTTP/2 connection from which nothing arrives for ReadHeaderTimeout is pinged,
	// and closed when the ping is not answered within ReadHeaderTimeout: this cuts a
	// client that stalls in the middle of a header block (which no stream deadline
	// covers) as quickly as an HTTP/1.1 client that stalls in its headers.
	srv.HTTP2 = &http.HTTP2Config{SendPingTimeout: c.ReadHeaderTimeout, PingTimeout: c.ReadHeaderTimeout}
}

// withBodyProgress enforces the minimum transfer rate of request bodies (see
// LimitsConfig) with per-connection read deadlines that move forward as the body
// arrives. Once the body is read, the read deadline is lifted and the response gets a
// full WriteTimeout, however long the upload took. onCut, if set, is called when a body
// is cut off. Requests without a body pass through untouched.
func withBodyProgress(next http.Handler, c LimitsConfig, onCut func()) http.Handler {
	if c.BodyProgressTimeout < 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		pr := &progressReader{body: r.Body, w: w, c: &c, onCut: onCut}
		if !pr.extend() {
			next.ServeHTTP(w, r) // the connection does not support deadlines
			return
		}
		r.Body = pr
		next.ServeHTTP(w, r)
	})
}

// progressReader is a request body that pushes the connection's read deadline forward
// each time another BodyProgressBytes have arrived.
type progressReader struct {
	body  io.ReadCloser
	w     http.ResponseWriter
	c     *LimitsConfig
	onCut func()
	// since counts the bytes read since the deadline was last moved.
	since int64
	done  bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	if p.done {
		return n, err
	}
	p.since += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		p.finish()
	case err != nil:
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() && p.onCut != nil {
			p.onCut()
		}
	case p.since >= p.c.BodyProgressBytes:
		p.since = 0
		p.extend()
	}
	return n, err
}

func (p *progressReader) Close() error { return p.body.Close() }

// extend gives the client another BodyProgressTimeout to send BodyProgressBytes more.
func (p *progressReader) extend() bool {
	return http.NewResponseController(p.w).SetReadDeadline(time.Now().Add(p.c.BodyProgressTimeout)) == nil
}

// finish lifts the read deadline once the body is complete (the server goes on reading
// the connection in the background to notice a client that goes away) and gives the
// response a whole WriteTimeout from now.
func (p *progressReader) finish() {
	p.done = true
	rc := http.NewResponseController(p.w)
	_ = rc.SetReadDeadline(time.Time{})
	var deadline time.Time // none
	if p.c.WriteTimeout > 0 {
		deadline = time.Now().Add(p.c.WriteTimeout)
	}
	_ = rc.SetWriteDeadline(deadline)
}
