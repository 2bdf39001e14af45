package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// walProbe reads PostgreSQL's cumulative WAL statistics (pg_stat_wal, PostgreSQL 14 and
// later) over a connection of its own. The counters are cluster-wide, and each backend
// adds its share at most once a second, so a cell's count is exact only to about a
// second of load at either end of its window.
type walProbe struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

func openWALProbe(ctx context.Context, url string) (*walProbe, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	p := &walProbe{conn: conn}
	if _, _, err := p.read(); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("pg_stat_wal: %w", err)
	}
	return p, nil
}

// read returns the WAL writes and the WAL flushes to disk since the statistics were
// last reset.
func (p *walProbe) read() (writes, syncs int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = p.conn.QueryRow(ctx, "SELECT wal_write, wal_sync FROM pg_stat_wal").Scan(&writes, &syncs)
	return writes, syncs, err
}

func (p *walProbe) close() {
	if p != nil {
		_ = p.conn.Close(context.Background())
	}
}

// describePostgres names the server at url and the settings that decide what a commit
// costs, e.g. "PostgreSQL 15.8: fsync=on, synchronous_commit=on, full_page_writes=on".
func describePostgres(ctx context.Context, url string) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var version, fsync, syncCommit, fpw, walSync string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('full_page_writes'), current_setting('wal_sync_method')`).
		Scan(&version, &fsync, &syncCommit, &fpw, &walSync)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("PostgreSQL %s: fsync=%s, synchronous_commit=%s, full_page_writes=%s, wal_sync_method=%s",
		version, fsync, syncCommit, fpw, walSync), nil
}
