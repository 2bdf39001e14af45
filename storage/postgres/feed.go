package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

// The change feed of the PostgreSQL store. Every change of a followed store is recorded
// by the trigger vss_record_change (migration 0005) in the writer's transaction,
// numbered from the store's head row, which each write locks first (BeginBatch).
// So one rule, in the database, covers every write path: single requests, group commit
// batches, quotas, the admin commands. A store is followed from the first time its feed
// is read (Changes calls FollowStore); until then its writes record nothing and notify
// no one, so that a deployment pays for the feed only in the stores devices follow.
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

// beginRequest returns the BeginRequest arguments of w.
func beginRequest(w *write) pgdb.BeginRequestParams {
	arg := pgdb.BeginRequestParams{UserToken: w.user(), StoreID: w.storeID(), DeviceID: w.writer.DeviceID}
	if l := w.writer.Lease; l != nil {
		arg.LeaseName, arg.LeaseToken = l.Name, l.Token
	}
	return arg
}

// hintsWrongCode is the SQLSTATE BeginBatch raises when a store's hint was wrong.
const hintsWrongCode = "VS428"

// maxHints bounds the stores whose hints a Store keeps. A store whose hint was dropped
// costs its next write one retry (VS428), which brings the hint back.
const maxHints = 1 << 16

// hints are what a Store believes of which stores someone follows: the stores its own
// feed reads followed, and those BeginBatch reported followed when a hint was wrong
// (another instance's devices follow them). A store, once followed, stays followed, so
// a hint is only ever wrong for a store another instance started to follow; BeginBatch
// checks every write's hint in the write's transaction.
type hints struct {
	stores *lru.Cache[[2]string, struct{}]
}

func newHints() hints {
	c, err := lru.New[[2]string, struct{}](maxHints)
	if err != nil {
		panic(err) // only for a size < 1
	}
	return hints{stores: c}
}

func (h hints) followed(user, storeID string) bool {
	return h.stores.Contains([2]string{user, storeID})
}

func (h hints) follow(user, storeID string) {
	h.stores.Add([2]string{user, storeID}, struct{}{})
}

// correct applies the stores' states that BeginBatch reported in err, if it is VS428.
func (h hints) correct(err error) {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != hintsWrongCode {
		return
	}
	var states [][3]any
	if json.Unmarshal([]byte(pgErr.Detail), &states) != nil {
		h.stores.Purge() // cannot happen; the hints are rebuilt as writes meet VS428
		return
	}
	for _, st := range states {
		user, _ := st[0].(string)
		storeID, _ := st[1].(string)
		if followed, _ := st[2].(bool); followed {
			h.follow(user, storeID)
		} else {
			h.stores.Remove([2]string{user, storeID})
		}
	}
}

// Changes returns the changes of a store after req.After, from one snapshot.
func (s *Store) Changes(ctx context.Context, user string, req storage.ChangesRequest) (storage.ChangePage, error) {
	maxBytes := req.MaxValueBytes
	if maxBytes <= 0 || !req.WithValues {
		maxBytes = math.MaxInt64
	}
	arg := pgdb.ListChangesParams{
		UserToken:     user,
		StoreID:       req.StoreID,
		After:         req.After,
		PageLimit:     int64(max(req.Limit, 0)), // HeadOnly callers leave it 0
		WithValues:    req.WithValues,
		MaxValueBytes: maxBytes,
	}
	rows, err := s.q.ListChanges(ctx, arg)
	if err == nil && len(rows) > 0 && rows[0].Head < 0 {
		// Nobody followed the store before: start recording its changes, and read again.
		err = retry(ctx, func() error {
			_, err := s.q.FollowStore(ctx, pgdb.FollowStoreParams{UserToken: user, StoreID: req.StoreID})
			return err
		})
		if err == nil {
			rows, err = s.q.ListChanges(ctx, arg)
		}
	}
	if err == nil && len(rows) > 0 && rows[0].Head >= 0 {
		s.hints.follow(user, req.StoreID)
	}
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
