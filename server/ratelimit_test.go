package server

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestRateLimiterBucket(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	l := newRateLimiter(RateLimit{Rate: 2, Burst: 3}, clock.now)
	for i := range 3 {
		if ok, _ := l.allow("u"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("u")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok %v, wait %v; want refused, 500ms", ok, wait)
	}
	// A refused request takes no token: after the wait one request passes, not zero.
	if ok, _ := l.allow("other"); !ok {
		t.Fatal("another user is limited by u's bucket")
	}
	clock.advance(500 * time.Millisecond)
	if ok, _ := l.allow("u"); !ok {
		t.Fatal("no token after the announced wait")
	}
	if ok, _ := l.allow("u"); ok {
		t.Fatal("a second token appeared early")
	}
	if got := rateLimited(wait).RetryAfter; got != time.Second {
		t.Errorf("RetryAfter = %v, want at least a second", got)
	}
	if newRateLimiter(RateLimit{}, nil) != nil {
		t.Error("a zero RateLimit is not off")
	}
	if l := newRateLimiter(RateLimit{Rate: 2.5}, nil); l.burst != 3 {
		t.Errorf("default burst for 2.5/s = %d, want 3", l.burst)
	}
}

// TestRateLimiterMemory checks that buckets of idle users are dropped and that the
// number of buckets never passes its bound, however many users come.
func TestRateLimiterMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	// A bucket refills in 10 s.
	l := newRateLimiter(RateLimit{Rate: 1, Burst: 10, MaxTracked: 1000}, clock.now)
	for i := range 500 {
		l.allow(fmt.Sprintf("early-%d", i))
	}
	if n := l.tracked(); n != 500 {
		t.Fatalf("%d buckets, want 500", n)
	}
	clock.advance(11 * time.Second)
	l.allow("late")
	if n := l.tracked(); n != 1 {
		t.Fatalf("after the refill time %d buckets are left, want only the new one", n)
	}

	// 100,000 users within one refill time: the bound holds, and the most recently
	// active users keep their buckets.
	for i := range 100_000 {
		l.allow(fmt.Sprintf("user-%d", i))
		clock.advance(time.Microsecond)
		if i%997 == 0 && l.tracked() > 1000 {
			t.Fatalf("%d buckets after %d users; bound is 1000", l.tracked(), i+1)
		}
	}
	if n := l.tracked(); n > 1000 || n < 750 {
		t.Fatalf("%d buckets, want between 750 and 1000", n)
	}
	l.mu.Lock()
	_, newest := l.buckets["user-99999"]
	_, oldest := l.buckets["user-0"]
	l.mu.Unlock()
	if !newest || oldest {
		t.Errorf("eviction kept the oldest user (%v) or dropped the newest (%v)", oldest, !newest)
	}
}

func TestNthNewest(t *testing.T) {
	base := time.Unix(0, 0)
	for _, n := range []int{1, 2, 7, 50, 99, 100} {
		times := make([]time.Time, 100)
		for i := range times {
			times[i] = base.Add(time.Duration(rand.IntN(40)) * time.Second) // with duplicates
		}
		sorted := slices.Clone(times)
		slices.SortFunc(sorted, func(a, b time.Time) int { return b.Compare(a) })
		if got := nthNewest(times, n); !got.Equal(sorted[n-1]) {
			t.Errorf("nthNewest(%d) = %v, want %v", n, got, sorted[n-1])
		}
	}
	if !nthNewest(nil, 1).IsZero() {
		t.Error("nthNewest of nothing is not the zero time")
	}
}
