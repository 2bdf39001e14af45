package vssclient

import (
	"testing"
	"time"
)

// TestBackoff checks that the waits double from InitialBackoff up to MaxBackoff, each
// drawn from [d/2, d], and that large attempt numbers do not overflow.
func TestBackoff(t *testing.T) {
	t.Parallel()
	c := New("http://127.0.0.1:1", WithRetry(RetryPolicy{MaxAttempts: 100, InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}))
	for _, tc := range []struct {
		attempt int
		d       time.Duration
	}{{1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {3, 40 * time.Millisecond}, {7, 640 * time.Millisecond}, {8, time.Second}, {40, time.Second}, {99, time.Second}} {
		lo, hi := tc.d, time.Duration(0)
		for range 200 {
			w := c.backoff(tc.attempt)
			lo, hi = min(lo, w), max(hi, w)
		}
		if lo < tc.d/2 || hi > tc.d || hi-lo < tc.d/10 {
			t.Errorf("attempt %d: waits in [%v, %v], want spread over [%v, %v]", tc.attempt, lo, hi, tc.d/2, tc.d)
		}
	}
	d := New("http://127.0.0.1:1")
	if d.retry != (RetryPolicy{MaxAttempts: DefaultMaxAttempts, InitialBackoff: DefaultInitialBackoff, MaxBackoff: DefaultMaxBackoff}) || d.timeout != DefaultTimeout {
		t.Errorf("defaults: %+v, timeout %v", d.retry, d.timeout)
	}
}
