package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// DefaultQueueTimeout is how long a request over the concurrency cap waits for a slot
// before it is refused: long enough to absorb a burst, short enough that the client's
// retry (clients back off and retry 5xx and unavailable) is the better use of its time.
const DefaultQueueTimeout = 500 * time.Millisecond

// RetryAfterSeconds is the Retry-After value sent with a refusal for overload.
const RetryAfterSeconds = "1"

// overloadMessage is what a client refused for overload reads.
const overloadMessage = "the server is busy: too many concurrent requests, retry later"

// limiter caps the number of requests served at once. A request over the cap waits up
// to its queue timeout for a slot, then is refused with 503 and Retry-After: on the VSS
// HTTP API with an ErrorResponse INTERNAL_SERVER_EXCEPTION (the code deployed clients
// retry), on Connect, gRPC and gRPC-Web with code unavailable. Health checks and
// metrics are never limited, so that an overloaded server is still seen to be alive.
type limiter struct {
	next    http.Handler
	slots   chan struct{}
	wait    time.Duration
	metrics *Metrics
	log     *slog.Logger
	errs    *connect.ErrorWriter
}

func newLimiter(next http.Handler, opts Options, log *slog.Logger) http.Handler {
	if opts.MaxConcurrentRequests <= 0 {
		return next
	}
	wait := opts.QueueTimeout
	if wait <= 0 {
		wait = DefaultQueueTimeout
	}
	return &limiter{
		next:    next,
		slots:   make(chan struct{}, opts.MaxConcurrentRequests),
		wait:    wait,
		metrics: opts.Metrics,
		log:     log,
		errs:    connect.NewErrorWriter(),
	}
}

// unlimited reports whether path is exempt from the cap: liveness, readiness and
// metrics, which monitoring must reach however busy the server is.
func unlimited(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/grpc.health.v1.Health/")
}

func (l *limiter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if unlimited(r.URL.Path) {
		l.next.ServeHTTP(w, r)
		return
	}
	select {
	case l.slots <- struct{}{}:
	default:
		if !l.queue(r.Context()) {
			l.refuse(w, r)
			return
		}
	}
	defer l.release()
	l.next.ServeHTTP(w, r)
}

func (l *limiter) release() { <-l.slots }

// queue waits for a free slot for up to the queue timeout.
func (l *limiter) queue(ctx context.Context) bool {
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (l *limiter) refuse(w http.ResponseWriter, r *http.Request) {
	l.metrics.overloaded()
	l.log.WarnContext(r.Context(), "request refused: too many concurrent requests", "request_id", RequestID(r.Context()),
		"limit", cap(l.slots), "path", r.URL.Path)
	w.Header().Set("Retry-After", RetryAfterSeconds)
	switch {
	case strings.HasPrefix(r.URL.Path, LegacyPathPrefix):
		writeLegacyError(w, http.StatusServiceUnavailable, &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Message: overloadMessage, Unavailable: true})
	case l.errs.IsSupported(r):
		_ = l.errs.Write(w, r, connectError(&Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Message: overloadMessage, Unavailable: true}))
	default:
		http.Error(w, overloadMessage, http.StatusServiceUnavailable)
	}
}
