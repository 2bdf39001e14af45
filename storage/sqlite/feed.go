package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

// The change feed of the embedded store: triggers on vss_db (migration 0005) record
// every change of a followed store in the writer's transaction, numbered from the
// store's head row. A store is followed from the first time its feed is read. The
// one write connection commits writes one after another, so the numbers follow commit
// order. Streams are woken in-process after each commit.

var (
	_ storage.Feed   = (*Store)(nil)
	_ storage.Leases = (*Store)(nil)
)

// beginWrite runs first in every write's transaction: it names the writing device for
// the triggers and, for a fenced write, checks that its lease is held with its token
// and not expired. The one write connection runs this check and the write in one
// transaction that no lease change can interleave with.
func beginWrite(ctx context.Context, q *sqlitedb.Queries, w *write) error {
	if err := q.SetWriter(ctx, w.writer.DeviceID); err != nil {
		return err
	}
	l := w.writer.Lease
	if l == nil {
		return nil
	}
	g, err := q.LeaseGrant(ctx, sqlitedb.LeaseGrantParams{UserToken: w.user, StoreID: w.store(), Name: l.Name})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrLeaseNotHeld
	}
	if err != nil {
		return err
	}
	if g.Token != l.Token || g.ExpiresAt <= time.Now().UnixMilli() {
		return storage.ErrLeaseNotHeld
	}
	return nil
}

// Changes returns the changes of a store after req.After, from one read transaction.
func (s *Store) Changes(ctx context.Context, user string, req storage.ChangesRequest) (storage.ChangePage, error) {
	page, err := s.changes(ctx, user, req)
	if errors.Is(err, errNotFollowed) {
		// Nobody followed the store before: start recording its changes, and read again.
		err = sqlitedb.New(s.write).FollowStore(ctx, sqlitedb.FollowStoreParams{UserToken: user, StoreID: req.StoreID})
		if err == nil {
			page, err = s.changes(ctx, user, req)
		}
	}
	return page, interpretError(err)
}

// errNotFollowed is changes' answer for a store nobody follows yet.
var errNotFollowed = errors.New("store not followed")

func (s *Store) changes(ctx context.Context, user string, req storage.ChangesRequest) (storage.ChangePage, error) {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return storage.ChangePage{}, err
	}
	defer tx.Rollback() // read-only: ending it is all that matters
	q := sqlitedb.New(tx)
	st, err := q.FeedState(ctx, sqlitedb.FeedStateParams{UserToken: user, StoreID: req.StoreID})
	if err != nil {
		return storage.ChangePage{}, err
	}
	if st.Head < 0 {
		return storage.ChangePage{}, errNotFollowed
	}
	page := storage.ChangePage{Head: st.Head}
	if req.HeadOnly {
		return page, nil
	}
	if err := storage.CheckCursor(req.After, st.Head, st.Oldest); err != nil {
		return storage.ChangePage{}, err
	}
	if req.Limit <= 0 {
		return page, nil
	}
	rows, err := q.ListChanges(ctx, sqlitedb.ListChangesParams{UserToken: user, StoreID: req.StoreID, After: req.After, PageLimit: int64(req.Limit)})
	if err != nil {
		return storage.ChangePage{}, err
	}
	var bytes int64
	for i, r := range rows {
		c := storage.Change{Seq: r.Seq, Key: r.Key, Version: r.Version, Deleted: r.Deleted != 0,
			DeviceID: r.DeviceID, ChangedAt: time.UnixMilli(r.ChangedAt).UTC()}
		if req.WithValues && r.ValueSize >= 0 {
			if i > 0 && req.MaxValueBytes > 0 && bytes+r.ValueSize > req.MaxValueBytes {
				break
			}
			bytes += r.ValueSize
			v, err := q.ChangeValue(ctx, sqlitedb.ChangeValueParams{UserToken: user, StoreID: req.StoreID, Key: r.Key, Version: r.Version})
			if err != nil {
				return storage.ChangePage{}, err
			}
			c.Value, c.HasValue = v, true
			if c.Value == nil {
				c.Value = []byte{}
			}
		}
		page.Changes = append(page.Changes, c)
	}
	return page, nil
}

// PruneChanges deletes the changes older than retention.
func (s *Store) PruneChanges(ctx context.Context, retention time.Duration) (int64, error) {
	n, err := sqlitedb.New(s.write).PruneChanges(ctx, time.Now().Add(-retention).UnixMilli())
	return n, interpretError(err)
}

// WatchCommits calls wake after each write of this store commits, until ctx ends. Once
// it is registered it wakes every reader (user ""): a write that committed while it was
// being registered woke nobody.
func (s *Store) WatchCommits(ctx context.Context, wake func(user, storeID string)) error {
	id := s.watchers.add(wake)
	defer s.watchers.remove(id)
	wake("", "")
	<-ctx.Done()
	return nil
}

// watchers are the functions WatchCommits registered.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(user, storeID string)
}

func (w *watchers) add(fn func(user, storeID string)) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(user, storeID string){}
	}
	w.next++
	w.fns[w.next] = fn
	return w.next
}

func (w *watchers) remove(id int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.fns, id)
}

func (w *watchers) wake(user, storeID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, fn := range w.fns {
		fn(user, storeID)
	}
}

// lease converts a lease row read at now (Unix milliseconds) to a storage.Lease.
func lease(storeID, name, holder string, token, expiresAt, now int64) storage.Lease {
	l := storage.Lease{StoreID: storeID, Name: name, Holder: holder, Token: token, ExpiresAt: time.UnixMilli(expiresAt).UTC()}
	if expiresAt > now {
		l.Held, l.Remaining = true, time.Duration(expiresAt-now)*time.Millisecond
	}
	return l
}

// AcquireLease grants the lease unless a grant is in force, in one write transaction.
func (s *Store) AcquireLease(ctx context.Context, user, storeID, name, holder string, ttl time.Duration) (storage.Lease, error) {
	l, err := s.acquireLease(ctx, user, storeID, name, holder, ttl)
	return l, interpretError(err)
}

func (s *Store) acquireLease(ctx context.Context, user, storeID, name, holder string, ttl time.Duration) (storage.Lease, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return storage.Lease{}, err
	}
	defer tx.Rollback() // a no-op once committed
	q := sqlitedb.New(tx)
	now := time.Now().UnixMilli()
	token := int64(1)
	cur, err := q.GetLease(ctx, sqlitedb.GetLeaseParams{UserToken: user, StoreID: storeID, Name: name})
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return storage.Lease{}, err
	case cur.ExpiresAt > now:
		return storage.Lease{}, &storage.LeaseHeldError{Lease: lease(storeID, name, cur.Holder, cur.Token, cur.ExpiresAt, now)}
	default:
		token = cur.Token + 1
	}
	expires := now + ttl.Milliseconds()
	if err := q.PutLease(ctx, sqlitedb.PutLeaseParams{UserToken: user, StoreID: storeID, Name: name, Holder: holder, Token: token, ExpiresAt: expires}); err != nil {
		return storage.Lease{}, err
	}
	if err := tx.Commit(); err != nil {
		return storage.Lease{}, err
	}
	return lease(storeID, name, holder, token, expires, now), nil
}

// RenewLease extends the grant with token if it is in force.
func (s *Store) RenewLease(ctx context.Context, user, storeID, name string, token int64, ttl time.Duration) (storage.Lease, error) {
	now := time.Now().UnixMilli()
	r, err := sqlitedb.New(s.write).RenewLease(ctx, sqlitedb.RenewLeaseParams{UserToken: user, StoreID: storeID, Name: name, Token: token,
		Now: now, ExpiresAt: now + ttl.Milliseconds()})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Lease{}, storage.ErrLeaseNotHeld
	}
	if err != nil {
		return storage.Lease{}, interpretError(err)
	}
	return lease(storeID, name, r.Holder, r.Token, r.ExpiresAt, now), nil
}

// ReleaseLease ends the grant with token if it is in force.
func (s *Store) ReleaseLease(ctx context.Context, user, storeID, name string, token int64) (bool, error) {
	n, err := sqlitedb.New(s.write).ReleaseLease(ctx, sqlitedb.ReleaseLeaseParams{UserToken: user, StoreID: storeID, Name: name, Token: token,
		Now: time.Now().UnixMilli()})
	return n > 0, interpretError(err)
}

// GetLease returns the lease's latest grant.
func (s *Store) GetLease(ctx context.Context, user, storeID, name string) (storage.Lease, error) {
	now := time.Now().UnixMilli()
	r, err := sqlitedb.New(s.read).GetLease(ctx, sqlitedb.GetLeaseParams{UserToken: user, StoreID: storeID, Name: name})
	if err != nil {
		return storage.Lease{}, interpretError(err)
	}
	return lease(storeID, name, r.Holder, r.Token, r.ExpiresAt, now), nil
}
