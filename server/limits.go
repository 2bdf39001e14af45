package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// DefaultQueueTimeout is how long a request over the concurrency cap waits for a slot
// before it is refused: long enough to absorb a burst, short enough that the client's
// retry (clients back off and retry 5xx and unavailable) is the better use of its time.
const DefaultQueueTimeout = 500 * time.Millisecond

// Defaults of the request budgets (see Options).
const (
	// DefaultUserShareDivisor sets the default per-user cap: a user may hold at most
	// 1/DefaultUserShareDivisor of MaxConcurrentRequests (at least one slot).
	DefaultUserShareDivisor = 16
	// DefaultMaxConcurrentPublic is the default number of slots of the unauthenticated
	// surface (health, reflection, LNURL-auth, metrics, the explorer's files).
	DefaultMaxConcurrentPublic = 64
	// DefaultPublicShareDivisor sets the default per-address cap on the unauthenticated
	// surface: 1/DefaultPublicShareDivisor of its slots (at least one).
	DefaultPublicShareDivisor = 4
)

// RetryAfterSeconds is the Retry-After value sent with a refusal for overload.
const RetryAfterSeconds = "1"

// The messages of the refusals for overload.
const (
	overloadMessage  = "the server is busy: too many concurrent requests, retry later"
	userShareMessage = "too many concurrent requests for this user, retry later"
	addrShareMessage = "too many concurrent requests from this address, retry later"
)

// refusal is why a request did not get a slot; it labels the refusals metric.
type refusal uint8

const (
	refusedServer       refusal = iota // every slot of the authenticated VSS budget is taken
	refusedUser                        // the user holds its share of that budget
	refusedPublic                      // every slot of the unauthenticated budget is taken
	refusedAddress                     // the client address holds its share of that budget
	refusedServerUpload                // the upload budget of all VSS calls is spent
	refusedUserUpload                  // the user holds its share of the upload budget
	numRefusals
)

var refusalNames = [numRefusals]string{"server", "user", "public", "address", "server_upload", "user_upload"}

// pool is a budget of request slots: at most cap(slots) requests hold one at a time,
// and at most perKey of them share one key (a user, a client address). A request over
// its key's share is refused at once, which costs nobody else anything; a request that
// finds every slot taken waits up to wait for one, in arrival order, then is refused.
type pool struct {
	slots  chan struct{} // nil: no overall cap
	perKey int           // 0: no cap per key
	wait   time.Duration

	mu   sync.Mutex
	held map[string]int
}

// newPool returns a pool of size slots (none: size <= 0) with perKey slots per key
// (no per-key cap: perKey <= 0).
func newPool(size, perKey int, wait time.Duration) *pool {
	p := &pool{perKey: max(perKey, 0), wait: wait, held: make(map[string]int)}
	if size > 0 {
		p.slots = make(chan struct{}, size)
	}
	if p.wait <= 0 {
		p.wait = DefaultQueueTimeout
	}
	return p
}

// acquire takes a slot for key (the empty key has no share cap). It reports whether it
// got one, and if not whether the key's share or the whole pool was full. A caller that
// got a slot must call release with the same key.
func (p *pool) acquire(ctx context.Context, key string) (ok, shareFull bool) {
	if p.perKey > 0 && key != "" {
		p.mu.Lock()
		n := p.held[key]
		if n >= p.perKey {
			p.mu.Unlock()
			return false, true
		}
		p.held[key] = n + 1
		p.mu.Unlock()
	}
	if p.slots == nil {
		return true, false
	}
	select {
	case p.slots <- struct{}{}:
		return true, false
	default:
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return true, false
	case <-t.C:
	case <-ctx.Done():
	}
	p.unshare(key)
	return false, false
}

// release gives back the slot key acquired.
func (p *pool) release(key string) {
	if p.slots != nil {
		<-p.slots
	}
	p.unshare(key)
}

func (p *pool) unshare(key string) {
	if p.perKey <= 0 || key == "" {
		return
	}
	p.mu.Lock()
	if n := p.held[key]; n <= 1 {
		delete(p.held, key)
	} else {
		p.held[key] = n - 1
	}
	p.mu.Unlock()
}

// keys returns the number of keys holding slots, for tests.
func (p *pool) keys() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// budgets are the two separate budgets of request slots. Authenticated VSS calls (the
// VSS HTTP API, and Connect, gRPC and gRPC-Web under /vss.v1.VssService/) take a slot
// of vss after authentication and before their body is read, with a share per user
// (handler.admit). Everything else the server mounts is reachable without
// credentials: the gRPC health and reflection services, LNURL-auth, /metrics, /healthz,
// /readyz and the explorer's files. Those take a slot of public, with a share per
// client address, before anything else happens (withPublicBudget). So a flood of
// requests without credentials, or of one user's requests, cannot take the slots that
// other users' calls need.
type budgets struct {
	vss     *pool       // nil: no cap
	public  *pool       // nil: no cap
	uploads *byteBudget // nil: no cap
	// perUser is true unless every request is the same user (authentication off).
	perUser bool
	metrics *Metrics
	log     *slog.Logger
}

func newBudgets(opts Options, log *slog.Logger) *budgets {
	b := &budgets{perUser: !isNoAuth(opts.Authorizer), metrics: opts.Metrics, log: log}
	if opts.MaxConcurrentRequests > 0 || opts.MaxConcurrentPerUser > 0 {
		perUser := opts.MaxConcurrentPerUser
		if perUser == 0 && opts.MaxConcurrentRequests > 0 {
			perUser = max(1, opts.MaxConcurrentRequests/DefaultUserShareDivisor)
		}
		b.vss = newPool(opts.MaxConcurrentRequests, perUser, opts.QueueTimeout)
	}
	if opts.MaxConcurrentPublic > 0 || opts.MaxConcurrentPerAddress > 0 {
		perAddr := opts.MaxConcurrentPerAddress
		if perAddr == 0 && opts.MaxConcurrentPublic > 0 {
			perAddr = max(1, opts.MaxConcurrentPublic/DefaultPublicShareDivisor)
		}
		b.public = newPool(opts.MaxConcurrentPublic, perAddr, opts.QueueTimeout)
	}
	if opts.MaxUploadBytes > 0 || opts.MaxUploadBytesPerUser > 0 {
		perUser := opts.MaxUploadBytesPerUser
		if perUser == 0 && opts.MaxUploadBytes > 0 {
			maxBody := opts.MaxBodyBytes
			if maxBody <= 0 {
				maxBody = DefaultMaxBodyBytes
			}
			perUser = max(opts.MaxUploadBytes/DefaultUploadUserShareDivisor, maxBody)
		}
		b.uploads = newByteBudget(opts.MaxUploadBytes, perUser)
	}
	return b
}

// admitUser takes a slot of the VSS budget for user. It returns the release function, or
// the Error to answer with.
func (b *budgets) admitUser(ctx context.Context, user string) (func(), *Error) {
	if b.vss == nil {
		return func() {}, nil
	}
	key := user
	if !b.perUser {
		key = ""
	}
	ok, shareFull := b.vss.acquire(ctx, key)
	if !ok {
		if shareFull {
			b.metrics.refused(refusedUser)
			b.log.DebugContext(ctx, "request refused: the user holds its share of the request slots", "request_id", RequestID(ctx))
			return nil, overloaded(userShareMessage)
		}
		b.metrics.refused(refusedServer)
		b.log.WarnContext(ctx, "request refused: too many concurrent requests", "request_id", RequestID(ctx), "limit", cap(b.vss.slots))
		return nil, overloaded(overloadMessage)
	}
	return func() { b.vss.release(key) }, nil
}

// overloaded is the Error of a request refused for want of a slot: 503 with an
// INTERNAL_SERVER_EXCEPTION on the VSS HTTP API (the code deployed clients retry with
// backoff), unavailable on Connect, gRPC and gRPC-Web; both with Retry-After.
func overloaded(msg string) *Error {
	return &Error{Code: vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION, Message: msg, Unavailable: true, Kind: KindOverloaded, RetryAfter: time.Second}
}

// isVSSPath reports whether path belongs to the authenticated VSS service, whose
// requests are admitted by handler.admit rather than by withPublicBudget.
func isVSSPath(path string) bool {
	return strings.HasPrefix(path, LegacyPathPrefix) || strings.HasPrefix(path, "/"+vssv1connect.VssServiceName+"/")
}

// ClientKey is the key under which the budgets of a client are counted (request slots
// here, connections in vss-server's listener): the IP address of remoteAddr
// ("host:port"), or for IPv6 its /64 network, which one subscriber usually has whole.
func ClientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}

// withPublicBudget admits every request outside the VSS service through the public
// budget, keyed by client address; VSS requests pass through to be admitted after
// authentication.
func withPublicBudget(next http.Handler, b *budgets) http.Handler {
	if b.public == nil {
		return next
	}
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isVSSPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		key := ClientKey(r.RemoteAddr)
		ok, shareFull := b.public.acquire(r.Context(), key)
		if !ok {
			reason, msg := refusedPublic, overloadMessage
			if shareFull {
				reason, msg = refusedAddress, addrShareMessage
			}
			b.metrics.refused(reason)
			level := slog.LevelWarn
			if shareFull {
				level = slog.LevelDebug // the address's own requests: not worth a line each
			}
			b.log.Log(r.Context(), level, "request refused: the unauthenticated budget is used up", "request_id", RequestID(r.Context()),
				"reason", refusalNames[reason], "path", r.URL.Path)
			w.Header().Set("Retry-After", RetryAfterSeconds)
			if errs.IsSupported(r) {
				_ = errs.Write(w, r, connectError(overloaded(msg)))
			} else {
				http.Error(w, msg, http.StatusServiceUnavailable)
			}
			return
		}
		defer b.public.release(key)
		next.ServeHTTP(w, r)
	})
}
