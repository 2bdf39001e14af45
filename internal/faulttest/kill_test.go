package faulttest

import (
	"testing"
	"time"

	"github.com/govss/vss/internal/pgtest"
)

// TestKillServer kills the server with SIGKILL twice under load, on PostgreSQL and on
// the embedded store, and starts it again: every acknowledged write survives with its
// exact value and version, and no write in doubt is partly visible.
func TestKillServer(t *testing.T) {
	stores := []struct {
		name string
		args func(t *testing.T) []string
	}{
		{"postgres", func(t *testing.T) []string { return []string{"--database-url", pgtest.NewDatabase(t)} }},
		{"embedded", func(t *testing.T) []string { return []string{"--data-dir", t.TempDir()} }},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			srv := startServer(t, append(store.args(t), "--auth", "signature")...)
			l := startLoad(newWallets(t, 8, srv.url(), 2))
			defer l.stop()
			for round := range 2 {
				time.Sleep(1200 * time.Millisecond)
				before := l.applied()
				srv.kill()
				t.Logf("round %d: killed the server after %d acknowledged writes", round+1, before)
				time.Sleep(300 * time.Millisecond) // the wallets meet a dead server
				srv.start()
				waitFor(t, 10*time.Second, "the load to resume", func() bool { return l.applied() > before+50 })
			}
			time.Sleep(500 * time.Millisecond)
			l.stop()
			// Read back through a fresh process too: nothing may live only in the old
			// one's memory.
			srv.kill()
			srv.start()
			l.verify(t)
		})
	}
}
