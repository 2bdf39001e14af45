package auth

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSignatureRepeatedHeader checks the remembered headers: a header that verified is
// accepted again for the same user while its time is within the window and refused once
// the clock leaves it, and a header that failed is not remembered as good.
func TestSignatureRepeatedHeader(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(vectorTime)
	a := NewSignature(func() time.Time { return time.Unix(clock.Load(), 0) })

	for i := range 3 {
		if user, err := authorize(a, vectorHeader); err != nil || user != vectorUser {
			t.Fatalf("attempt %d: Authorize = %q, %v; want %q", i, user, err, vectorUser)
		}
	}
	clock.Store(vectorTime + int64(SignatureMaxSkew/time.Second) + 1)
	if msg := authMessage(t, mustFail(authorize(a, vectorHeader))); !strings.Contains(msg, "more than 24 hours in the past") {
		t.Fatalf("remembered header after the window: %q", msg)
	}
	clock.Store(vectorTime - int64(SignatureMaxSkew/time.Second) - 1)
	if msg := authMessage(t, mustFail(authorize(a, vectorHeader))); !strings.Contains(msg, "more than 24 hours in the future") {
		t.Fatalf("remembered header before the window: %q", msg)
	}

	// A tampered signature fails every time, before and after the good header was seen.
	clock.Store(vectorTime)
	bad := vectorHeader[:66] + strings.Repeat("1", 128) + vectorHeader[66+128:]
	for i := range 2 {
		if _, err := authorize(a, bad); err == nil {
			t.Fatalf("attempt %d: a wrong signature was accepted", i)
		}
	}
}
