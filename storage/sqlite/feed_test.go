package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/govss/vss/storage"
)

// TestWatchCommitsWakesAllOnceListening: a reader that looked before WatchCommits was
// registered missed any write committed in between, so WatchCommits wakes every reader
// once it listens, then each store written.
func TestWatchCommitsWakesAllOnceListening(t *testing.T) {
	s := openMemory(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	woken := make(chan [2]string, 8)
	go func() {
		_ = s.WatchCommits(ctx, func(user, storeID string) { woken <- [2]string{user, storeID} })
	}()
	next := func() [2]string {
		t.Helper()
		select {
		case w := <-woken:
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("WatchCommits woke nobody")
			return [2]string{}
		}
	}
	if w := next(); w != [2]string{"", ""} {
		t.Fatalf("first wake-up = %q, want every reader (user \"\")", w)
	}
	mustPut(t, s, "u", "store", []storage.KeyValue{kv("k", -1, "v")}, nil)
	if w := next(); w != [2]string{"u", "store"} {
		t.Fatalf("wake-up after a write = %q, want [u store]", w)
	}
}
