package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

// The change feed of the PostgreSQL store. Every change is recorded by the trigger
// vss_record_change (migration 0005) in the writer's transaction, numbered from the
// store's head row, which each write locks first (BeginStoreWrite). So one rule, in the
// database, covers every write path: single requests, group commit batches, quotas, the
// admin commands.
//
// Streams learn about commits through LISTEN/NOTIFY on the channel vss_changes: after a
// write committed, its instance sends a notification naming the store (coalesced, off
// the request's path), which every instance on the database hears. A notification only
// wakes streams, which then read the table from their cursor; a lost one (an instance
// that dies between its commit and its notification, a listening connection that
// breaks) only delays them until their next keep-alive, when they read anyway.

var (
	_ storage.Feed   = (*Store)(nil)
	_ storage.Leases = (*Store)(nil)
)

// notifyChannel is the LISTEN/NOTIFY channel of committed writes.
const notifyChannel = "vss_changes"

// beginStoreWrite returns the BeginStoreWrite arguments of w.
func beginStoreWrite(w *write) pgdb.BeginStoreWriteParams {
	arg := pgdb.BeginStoreWriteParams{UserToken: w.user(), StoreID: w.storeID(), DeviceID: w.writer.DeviceID}
	if l := w.writer.Lease; l != nil {
		arg.LeaseName, arg.LeaseToken = l.Name, l.Token
	}
	return arg
}

// Changes returns the changes of a store after req.After, from one snapshot.
func (s *Store) Changes(ctx context.Context, user string, req storage.ChangesRequest) (storage.ChangePage, error) {
	maxBytes := req.MaxValueBytes
	if maxBytes <= 0 || !req.WithValues {
		maxBytes = math.MaxInt64
	}
	rows, err := s.q.ListChanges(ctx, pgdb.ListChangesParams{
		UserToken:     user,
		StoreID:       req.StoreID,
		After:         req.After,
		PageLimit:     int64(max(req.Limit, 0)), // HeadOnly callers leave it 0
		WithValues:    req.WithValues,
		MaxValueBytes: maxBytes,
	})
	if err != nil {
		return storage.ChangePage{}, interpretError(err)
	}
	if len(rows) == 0 { // the state row always exists
		return storage.ChangePage{}, interpretError(pgx.ErrNoRows)
	}
	page := storage.ChangePage{Head: rows[0].Head}
	if req.HeadOnly {
		return page, nil
	}
	if err := storage.CheckCursor(req.After, rows[0].Head, rows[0].Oldest); err != nil {
		return storage.ChangePage{}, err
	}
	for _, r := range rows {
		if !r.Seq.Valid {
			continue
		}
		c := storage.Change{
			Seq: r.Seq.Int64, Key: r.Key.String, Version: r.Version.Int64, Deleted: r.Deleted.Bool,
			DeviceID: r.DeviceID.String, ChangedAt: r.ChangedAt.Time, HasValue: r.HasValue.Bool,
		}
		if c.HasValue {
			c.Value = r.Value
			if c.Value == nil {
				c.Value = []byte{}
			}
		}
		page.Changes = append(page.Changes, c)
	}
	return page, nil
}

// PruneChanges deletes the changes older than retention (by the database's clock).
func (s *Store) PruneChanges(ctx context.Context, retention time.Duration) (int64, error) {
	n, err := s.q.PruneChanges(ctx, retention.Seconds())
	return n, interpretError(err)
}

// WatchCommits listens for the commits of every instance on the database until ctx
// ends, on a connection of its own that it opens again after a failure (and then calls
// wake("", ""), since notifications may have been missed meanwhile).
func (s *Store) WatchCommits(ctx context.Context, wake func(user, storeID string)) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	for attempt := 0; ; attempt++ {
		err := s.listen(ctx, cfg, wake)
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("change feed: listening for commits failed; listening again", "err", interpretError(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, 5*time.Second)):
		}
	}
}

// listen runs one LISTEN connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, wake func(user, storeID string)) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	wake("", "") // whatever happened before this connection listened is unknown
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var key [2]string
		if json.Unmarshal([]byte(n.Payload), &key) != nil {
			wake("", "")
			continue
		}
		wake(key[0], key[1])
	}
}

// notifier sends the notifications of committed writes, coalesced: one statement
// carries every store written since the previous one, and only one is in flight.
type notifier struct {
	q   *pgdb.Queries
	log *slog.Logger

	mu      sync.Mutex
	pending map[[2]string]struct{}
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once
}

func newNotifier(q *pgdb.Queries, log *slog.Logger) *notifier {
	n := &notifier{q: q, log: log, pending: map[[2]string]struct{}{}, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	go n.run()
	return n
}

// committed notes that a write to (user, storeID) committed.
func (n *notifier) committed(user, storeID string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.pending[[2]string{user, storeID}] = struct{}{}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for {
		select {
		case <-n.stop:
			return
		case <-n.kick:
		}
		n.mu.Lock()
		pending := n.pending
		n.pending = make(map[[2]string]struct{}, len(pending))
		n.mu.Unlock()
		payloads := make([]string, 0, len(pending))
		for k := range pending {
			b, _ := json.Marshal(k)
			payloads = append(payloads, string(b))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.q.NotifyCommits(ctx, payloads); err != nil {
			// Streams read the feed at their next keep-alive anyway.
			n.log.Debug("change feed: notifying commits failed", "err", interpretError(err))
		}
		cancel()
	}
}

func (n *notifier) close() {
	if n == nil {
		return
	}
	n.closing.Do(func() { close(n.stop) })
	<-n.done
}

// lease converts a lease row to a storage.Lease.
func lease(storeID, name, holder string, token int64, expiresAt, now pgtype.Timestamptz) storage.Lease {
	l := storage.Lease{StoreID: storeID, Name: name, Holder: holder, Token: token, ExpiresAt: expiresAt.Time}
	if left := expiresAt.Time.Sub(now.Time); left > 0 {
		l.Held, l.Remaining = true, left
	}
	return l
}

// AcquireLease grants the lease unless a grant is in force.
func (s *Store) AcquireLease(ctx context.Context, user, storeID, name, holder string, ttl time.Duration) (storage.Lease, error) {
	r, err := s.q.AcquireLease(ctx, pgdb.AcquireLeaseParams{UserToken: user, StoreID: storeID, Name: name, Holder: holder, TtlSeconds: ttl.Seconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		cur, gerr := s.GetLease(ctx, user, storeID, name)
		if gerr != nil {
			return storage.Lease{}, gerr
		}
		return storage.Lease{}, &storage.LeaseHeldError{Lease: cur}
	}
	if err != nil {
		return storage.Lease{}, interpretError(err)
	}
	return lease(storeID, name, r.Holder, r.Token, r.ExpiresAt, r.Now), nil
}

// RenewLease extends the grant with token if it is in force.
func (s *Store) RenewLease(ctx context.Context, user, storeID, name string, token int64, ttl time.Duration) (storage.Lease, error) {
	r, err := s.q.RenewLease(ctx, pgdb.RenewLeaseParams{UserToken: user, StoreID: storeID, Name: name, Token: token, TtlSeconds: ttl.Seconds()})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Lease{}, storage.ErrLeaseNotHeld
	}
	if err != nil {
		return storage.Lease{}, interpretError(err)
	}
	return lease(storeID, name, r.Holder, r.Token, r.ExpiresAt, r.Now), nil
}

// ReleaseLease ends the grant with token if it is in force.
func (s *Store) ReleaseLease(ctx context.Context, user, storeID, name string, token int64) (bool, error) {
	n, err := s.q.ReleaseLease(ctx, pgdb.ReleaseLeaseParams{UserToken: user, StoreID: storeID, Name: name, Token: token})
	return n > 0, interpretError(err)
}

// GetLease returns the lease's latest grant.
func (s *Store) GetLease(ctx context.Context, user, storeID, name string) (storage.Lease, error) {
	r, err := s.q.GetLease(ctx, pgdb.GetLeaseParams{UserToken: user, StoreID: storeID, Name: name})
	if err != nil {
		return storage.Lease{}, interpretError(err)
	}
	return lease(storeID, name, r.Holder, r.Token, r.ExpiresAt, r.Now), nil
}
