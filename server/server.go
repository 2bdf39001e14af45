package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/storage"
)

// ProtocolVersionHeader is sent with every response, errors included: deployed VSS
// clients refuse responses without it.
const ProtocolVersionHeader = "Vss-Protocol-Version"

// ProtocolVersion is the VSS protocol version this server speaks.
const ProtocolVersion = "0"

// DefaultMaxBodyBytes is the default request body limit: far above the largest values
// wallets store (a few MiB), far below what would let one client exhaust memory.
const DefaultMaxBodyBytes = 64 << 20

var errInternal = errors.New("internal error")

// Options configure the HTTP handler returned by New.
type Options struct {
	// Store keeps the data. Required.
	Store storage.Store
	// Authorizer identifies the user of each request. Required: use NoAuth explicitly
	// to turn authentication off.
	Authorizer Authorizer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Routes, if set, adds more routes to the server's mux (for example the built-in
	// LNURL-auth issuer); they share the request ids and the request log.
	Routes func(mux *http.ServeMux)
	// RateLimit limits the requests of each user; the zero value turns it off.
	RateLimit RateLimit
	// Metrics, if set, records every VSS request (see NewMetrics).
	Metrics *Metrics
	// Interceptors, if set, wrap every Connect, gRPC and gRPC-Web call once it is
	// authenticated and decoded (tracing, for example).
	Interceptors []connect.Interceptor
	// MaxConcurrentRequests caps the VSS calls served at once; 0 means no cap. A call
	// takes its slot after authentication, before its body is read. Over the cap a call
	// waits up to QueueTimeout for a slot, then is refused with 503 and Retry-After
	// (Connect: unavailable).
	MaxConcurrentRequests int
	// MaxConcurrentPerUser caps the slots one user holds at once; over it a call is
	// refused at once, like a call over MaxConcurrentRequests. 0 means
	// MaxConcurrentRequests/DefaultUserShareDivisor (at least 1), negative no cap.
	// Without authentication (NoAuth) there is no per-user cap.
	MaxConcurrentPerUser int
	// MaxConcurrentPublic caps the requests served at once outside the VSS service,
	// everything reachable without credentials: the gRPC health and reflection
	// services, /healthz, /readyz, Routes (LNURL-auth, /metrics, the explorer); 0 means
	// no cap. These slots are separate from the VSS calls' slots.
	MaxConcurrentPublic int
	// MaxConcurrentPerAddress caps the public slots one client address (an IPv6 /64)
	// holds at once; 0 means MaxConcurrentPublic/DefaultPublicShareDivisor (at least
	// 1), negative no cap.
	MaxConcurrentPerAddress int
	// MaxUploadBytes caps the request-body bytes the VSS calls in flight hold, across
	// all users; 0 means no cap. Bytes are reserved before they are read (a declared
	// Content-Length at once), and a call whose bytes do not fit is refused at once,
	// like a call over its user's share of slots.
	MaxUploadBytes int64
	// MaxUploadBytesPerUser caps those bytes for one user; 0 means
	// MaxUploadBytes/DefaultUploadUserShareDivisor but at least MaxBodyBytes, negative
	// no cap. Without authentication there is no per-user cap.
	MaxUploadBytesPerUser int64
	// QueueTimeout is how long a request over a cap waits for a slot before it is
	// refused; 0 means DefaultQueueTimeout.
	QueueTimeout time.Duration
	// GRPCReflection serves gRPC server reflection (v1 and v1alpha), which tools such as
	// grpcurl use to discover the services. It is a debugging aid and off by default.
	GRPCReflection bool
	// Feed serves the change feed. When nil and Store implements storage.Feed, New
	// makes one with the default FeedOptions (without pruning: see Feed.Run).
	Feed *Feed
}

type handler struct {
	svc     *Service
	auth    Authorizer
	maxBody int64
	// bodies holds the buffers the VSS HTTP API reads request bodies into.
	bodies  bufferPool
	metrics *Metrics
	// interceptors wrap the Connect handler's calls.
	interceptors []connect.Interceptor
	// limit is the per-user rate limit, nil when off.
	limit *rateLimiter
	// budgets hold the request slots (limits.go).
	budgets *budgets
	// feed and leases serve the change feed and leases; nil when the store keeps none.
	feed   *Feed
	leases *Leases
	// dumps serves exports, imports and deletes; nil when the store offers none.
	dumps *Dumps
}

// New returns the server's HTTP handler: the existing VSS HTTP API under /vss/, the
// Connect, gRPC and gRPC-Web service under /vss.v1.VssService/, the gRPC health service
// (and gRPC reflection when Options.GRPCReflection is set), and /healthz and /readyz.
// Every request body is bounded by one set of rules (see bodyRules).
func New(opts Options) (http.Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("server: Options.Store is required")
	}
	if opts.Authorizer == nil {
		return nil, errors.New("server: Options.Authorizer is required (use NoAuth to turn authentication off)")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{
		svc:     NewService(opts.Store, log),
		auth:    opts.Authorizer,
		maxBody: opts.MaxBodyBytes,
		metrics: opts.Metrics,
		limit:   newRateLimiter(opts.RateLimit, nil),
		budgets: newBudgets(opts, log),
	}
	h.interceptors = opts.Interceptors
	h.feed = opts.Feed
	if fs, ok := opts.Store.(storage.Feed); ok && h.feed == nil {
		h.feed = NewFeed(fs, FeedOptions{}, log)
	}
	if h.feed != nil {
		h.feed.svc = h.svc
	}
	if ls, ok := opts.Store.(storage.Leases); ok {
		h.leases = &Leases{svc: h.svc, store: ls}
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if ds, ok := opts.Store.(DumpStore); ok {
		h.dumps = &Dumps{svc: h.svc, store: ds, maxRecord: int(h.maxBody) + 64<<10}
	}

	mux := http.NewServeMux()
	bodies := newBodyRules(h.maxBody)
	h.legacyRoutes(mux)
	bodies.mountRPC(mux, h.maxBody, h.connectHandler)
	bodies.mountRPC(mux, SmallBodyBytes, func(o ...connect.HandlerOption) (string, http.Handler) {
		return grpchealth.NewHandler(storeChecker{opts.Store}, o...)
	})
	if opts.GRPCReflection {
		reflector := grpcreflect.NewStaticReflector(vssv1connect.VssServiceName, grpchealth.HealthV1ServiceName)
		bodies.mountRPC(mux, SmallBodyBytes, func(o ...connect.HandlerOption) (string, http.Handler) {
			return grpcreflect.NewHandlerV1(reflector, o...)
		})
		bodies.mountRPC(mux, SmallBodyBytes, func(o ...connect.HandlerOption) (string, http.Handler) {
			return grpcreflect.NewHandlerV1Alpha(reflector, o...)
		})
	}
	if opts.Routes != nil {
		opts.Routes(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		err := opts.Store.Ping(ctx)
		if err != nil {
			log.WarnContext(ctx, "readiness check failed", "request_id", RequestID(ctx), "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unreachable\n"))
		} else {
			_, _ = w.Write([]byte("ok\n"))
		}
		if hr, ok := opts.Store.(storage.HealthReporter); ok {
			_, _ = w.Write([]byte(describeHealth(hr.DatabaseHealth(), time.Now())))
		}
	})
	bodies.next = mux
	return withRequestContext(withPublicBudget(limitByAddress(bodies, newRateLimiter(opts.RateLimit, nil)), h.budgets), log), nil
}

// describeHealth is the second line of /readyz for a store that follows its database:
// counts and durations only, since /readyz is public (the addresses of the database
// servers are in the log).
func describeHealth(h storage.DatabaseHealth, now time.Time) string {
	var b strings.Builder
	b.WriteString("database:")
	if !h.UnavailableSince.IsZero() {
		fmt.Fprintf(&b, " unavailable for %s now;", now.Sub(h.UnavailableSince).Round(time.Millisecond))
	}
	fmt.Fprintf(&b, " %d primary changes seen, %d connection errors, unavailable %s in all since the start\n",
		h.PrimaryChanges, h.ConnectionErrors, h.Unavailable.Round(time.Millisecond))
	return b.String()
}

// storeChecker reports the VSS service as serving while its database answers.
type storeChecker struct{ store storage.Store }

func (c storeChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", vssv1connect.VssServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, errors.New("unknown service "+QuoteInput(req.Service)))
	}
	if err := c.store.Ping(ctx); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

type requestIDKey struct{}

// RequestID returns the id of the request being served, as logged with its errors and
// returned in the X-Request-Id response header.
func RequestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.id
	}
	return ""
}

// withRequestContext gives every request an id, sends the protocol version header on
// every response, and logs one line per request at debug level.
func withRequestContext(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		h := w.Header()
		h.Set(ProtocolVersionHeader, ProtocolVersion)
		h.Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, newRequestState(id))
		r = r.WithContext(ctx)
		if !log.Enabled(ctx, slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.DebugContext(ctx, "request", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"proto", r.Proto, "status", sw.status, "bytes_in", r.ContentLength, "duration", time.Since(start))
	})
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status code of a response for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming protocols (gRPC trailers) work through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
