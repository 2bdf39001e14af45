package server

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// RateLimit configures the per-user rate limit: a token bucket for each user, which
// holds Burst requests and refills at Rate requests per second. The limit is checked
// after authentication and before the request body is read; a request over it is
// refused with Error kind KindRateLimited and a Retry-After. The unauthenticated
// LNURL-auth endpoints (/auth/lnurl...) get the same limit per client IP address (the
// connection's peer, so behind a proxy every client shares the proxy's bucket).
//
// Buckets live in the memory of one server process: N instances behind a load
// balancer allow a user up to N times the rate.
type RateLimit struct {
	// Rate is the sustained number of requests per second a user may make; 0 turns
	// rate limiting off.
	Rate float64
	// Burst is how many requests a user may make at once after being idle; 0 means
	// Rate rounded up (at least 1).
	Burst int
	// MaxTracked bounds the number of buckets kept in memory; 0 means
	// DefaultMaxTracked. See rateLimiter for what happens at the bound.
	MaxTracked int
}

// DefaultMaxTracked is the default bound on the buckets kept in memory: some 100 bytes
// each, so about 10 MB at the bound.
const DefaultMaxTracked = 100_000

// rateLimitedMessage is the message of a refusal for rate limiting.
const rateLimitedMessage = "rate limited"

// rateLimiter keeps a token bucket per key (user, or client address). Memory is
// bounded: a bucket that has not been used for as long as it takes to refill is full
// again, exactly like a new one, so a sweep drops such buckets without changing any
// answer. Sweeps run when a bucket is added and the last sweep is older than the refill
// time, or the map is at its bound. If a sweep cannot get below the bound (more keys
// active within one refill time than MaxTracked), it drops the least recently used
// buckets down to three quarters of the bound; those keys start again with a full
// bucket, which only errs on the side of letting requests through.
type rateLimiter struct {
	limit rate.Limit
	burst int
	max   int
	// idle is the time a bucket takes to refill entirely.
	idle time.Duration
	now  func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// newRateLimiter returns the limiter of c, or nil if c turns rate limiting off.
func newRateLimiter(c RateLimit, now func() time.Time) *rateLimiter {
	if c.Rate <= 0 {
		return nil
	}
	burst := c.Burst
	if burst <= 0 {
		burst = max(1, int(c.Rate+0.999999))
	}
	maxTracked := c.MaxTracked
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}
	if now == nil {
		now = time.Now
	}
	idle := time.Duration(float64(burst) / c.Rate * float64(time.Second))
	return &rateLimiter{
		limit:   rate.Limit(c.Rate),
		burst:   burst,
		max:     maxTracked,
		idle:    max(idle, time.Second),
		now:     now,
		buckets: make(map[string]*bucket),
	}
}

// allow takes a token from key's bucket. If there is none it returns false and how long
// until there will be one.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max || now.Sub(l.lastSweep) >= l.idle {
			l.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, l.idle
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the buckets that are full again, then, if the map is still at its bound,
// the least recently used ones. l.mu is held.
func (l *rateLimiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.idle {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.max {
		return
	}
	// Find the cut-off time that keeps the newest three quarters of the bound.
	keep := l.max * 3 / 4
	times := make([]time.Time, 0, len(l.buckets))
	for _, b := range l.buckets {
		times = append(times, b.last)
	}
	cut := nthNewest(times, keep)
	for k, b := range l.buckets {
		if len(l.buckets) <= keep {
			break
		}
		if !b.last.After(cut) {
			delete(l.buckets, k)
		}
	}
}

// nthNewest returns the n-th newest of times (1-based), or the zero time if there are
// not that many.
func nthNewest(times []time.Time, n int) time.Time {
	if n <= 0 || n > len(times) {
		return time.Time{}
	}
	// Quickselect on descending order.
	lo, hi, k := 0, len(times)-1, n-1
	for lo < hi {
		p := times[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for times[i].After(p) {
				i++
			}
			for p.After(times[j]) {
				j--
			}
			if i <= j {
				times[i], times[j] = times[j], times[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return times[k]
		}
	}
	return times[k]
}

// tracked returns the number of buckets in memory.
func (l *rateLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// rateLimited is the Error of a request refused for rate limiting. The VSS HTTP API
// answers it with 429 and INTERNAL_SERVER_EXCEPTION, which deployed clients retry with
// backoff; Connect with resource_exhausted. Both send Retry-After.
func rateLimited(wait time.Duration) *Error {
	return &Error{
		Code:       vssv1.ErrorCode_INTERNAL_SERVER_EXCEPTION,
		Message:    rateLimitedMessage,
		Kind:       KindRateLimited,
		RetryAfter: max(wait, time.Second),
	}
}

// lnurlPathPrefix is where the built-in LNURL-auth issuer's unauthenticated
// endpoints live.
const lnurlPathPrefix = "/auth/lnurl"

// limitByAddress applies l per client IP address to the LNURL-auth endpoints; other
// paths pass through. A refusal is 429 with Retry-After and the LNURL error JSON.
func limitByAddress(next http.Handler, l *rateLimiter) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, lnurlPathPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if ok, wait := l.allow(host); !ok {
			e := rateLimited(wait)
			h := w.Header()
			setRetryAfter(h, e)
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"status":"ERROR","reason":` + strconv.Quote(rateLimitedMessage) + `}` + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
