package server

import "testing"

func TestBufferPoolClasses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n       int
		wantCap int // 0: not pooled, a buffer of exactly n
	}{
		{1, 4 << 10},
		{4 << 10, 4 << 10},
		{4<<10 + 1, 8 << 10},
		{100 << 10, 128 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 0},
	} {
		var p bufferPool
		b := p.get(tc.n)
		want := tc.wantCap
		if want == 0 {
			want = tc.n
		}
		if len(b) != 0 || cap(b) != want {
			t.Errorf("get(%d): len %d cap %d, want len 0 cap %d", tc.n, len(b), cap(b), want)
		}
	}
}

func TestBufferPoolReusesOnlyWholeClasses(t *testing.T) {
	// Not parallel: sync.Pool may drop what it holds at a garbage collection, so the test
	// retries a few times rather than fail on one.
	var p bufferPool
	reused := false
	for range 10 {
		b := p.get(100 << 10)
		b = append(b, 1, 2, 3)
		p.put(b)
		if c := p.get(100 << 10); cap(c) == cap(b) && &c[:1][0] == &b[0] {
			if len(c) != 0 {
				t.Fatalf("a reused buffer has length %d, want 0", len(c))
			}
			reused = true
			break
		}
	}
	if !reused {
		t.Error("a buffer handed back was never reused")
	}
	// A buffer grown past its class by append has no class capacity and is dropped.
	grown := append(p.get(4 << 10)[:4<<10], 0)
	p.put(grown)
	if c := p.get(cap(grown)); cap(c) == cap(grown) && &c[:1][0] == &grown[0] {
		t.Error("a buffer whose capacity is no class's was pooled")
	}
}
