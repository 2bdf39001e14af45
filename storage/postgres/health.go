package postgres

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/govss/vss/storage"
)

// health follows the store's connections to the database, for operators (the metrics,
// /readyz and the log): the connection errors, the changes of primary that new
// connections found (failovers, switchovers, restarts), and how long the database could
// not be reached.
//
// It learns everything from pgx, as a tracer of every connection (every connect, query,
// batch and copy) and from the pool's AfterConnect hook; the request paths do nothing
// for it. The database is unavailable from the first connection error after a success
// until the next success, whatever the request: with a load balancer asking /readyz
// every few seconds, that is the time in which writes could not be made.
type health struct {
	log *slog.Logger
	// reset, when set, closes every connection of the pool (those in use when they are
	// released): it runs when the database becomes unreachable.
	reset func()

	connErrors     atomic.Int64
	primaryChanges atomic.Int64
	// downSince is when the current stretch of unavailability began, in Unix
	// nanoseconds; 0 while the database is reachable.
	downSince atomic.Int64

	mu        sync.Mutex
	primary   string        // the identity of the primary last connected to
	downTotal time.Duration // the stretches of unavailability that ended
}

func newHealth(log *slog.Logger) *health { return &health{log: log} }

// observe records the outcome of one database call: err nil is a success.
func (h *health) observe(err error) {
	switch {
	case err == nil:
		if h.downSince.Load() != 0 {
			h.recovered()
		}
	case connectionError(err):
		h.failed(err)
	}
}

// failed records a call that could not reach the database.
func (h *health) failed(err error) {
	h.connErrors.Add(1)
	if h.downSince.CompareAndSwap(0, time.Now().UnixNano()) {
		h.log.Warn("database unreachable: requests fail with UNAVAILABLE, which clients retry, until it answers again", "err", err)
		// The other connections of the pool most likely lead where this one did, to a
		// server that is gone or no longer the primary: drop them all now, rather than
		// fail one request on each as it is used (with a multi-host URL, the new ones
		// find the new primary).
		if h.reset != nil {
			go h.reset()
		}
	}
}

// recovered ends the current stretch of unavailability, if another call has not.
func (h *health) recovered() {
	since := h.downSince.Swap(0)
	if since == 0 {
		return
	}
	d := time.Since(time.Unix(0, since))
	h.mu.Lock()
	h.downTotal += d
	h.mu.Unlock()
	h.log.Info("database reachable again", "unavailable", d.Round(time.Millisecond).String())
}

// identifyPrimaryQuery names the server a new connection reached: its own address and
// port as it sees them (behind a proxy or a virtual address, the real server's), and
// when it started, so that a restarted primary counts as a change too.
const identifyPrimaryQuery = `SELECT coalesce(host(inet_server_addr()), ''), coalesce(inet_server_port(), 0), pg_postmaster_start_time()::text`

// afterConnect is the pool's AfterConnect hook: it records which primary the new
// connection reached, and counts a change of primary when it is not the one before.
func (h *health) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	var host, started string
	var port int
	if err := conn.QueryRow(ctx, identifyPrimaryQuery).Scan(&host, &port, &started); err != nil {
		return err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if host == "" { // a Unix socket: the address the driver dialed
		addr = conn.PgConn().Conn().RemoteAddr().String()
	}
	id := addr + " started " + started
	h.mu.Lock()
	before := h.primary
	h.primary = id
	h.mu.Unlock()
	if before != "" && before != id {
		h.primaryChanges.Add(1)
		h.log.Warn("database primary changed", "from", before, "to", id)
	}
	return nil
}

// snapshot returns what h has seen.
func (h *health) snapshot() storage.DatabaseHealth {
	s := storage.DatabaseHealth{
		ConnectionErrors: h.connErrors.Load(),
		PrimaryChanges:   h.primaryChanges.Load(),
	}
	h.mu.Lock()
	s.Unavailable = h.downTotal
	h.mu.Unlock()
	if since := h.downSince.Load(); since != 0 {
		s.UnavailableSince = time.Unix(0, since)
		s.Unavailable += time.Since(s.UnavailableSince)
	}
	return s
}

// The tracer methods: pgx calls them on every connection of the pool.

func (h *health) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (h *health) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	h.observe(data.Err)
}

func (h *health) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (h *health) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (h *health) TraceBatchEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	h.observe(data.Err)
}

func (h *health) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return ctx
}

func (h *health) TraceCopyFromEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	h.observe(data.Err)
}

func (h *health) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

// TraceConnectEnd counts a failed connect; a successful one is a success only once
// afterConnect has identified the primary, through its query.
func (h *health) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	if data.Err != nil {
		h.observe(data.Err)
	}
}

var (
	_ pgx.QueryTracer    = (*health)(nil)
	_ pgx.BatchTracer    = (*health)(nil)
	_ pgx.CopyFromTracer = (*health)(nil)
	_ pgx.ConnectTracer  = (*health)(nil)
)
