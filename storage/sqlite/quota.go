package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit"
)

// Option configures Open and OpenMemory.
type Option func(*options)

type options struct {
	quota       *storage.Quota
	groupCommit bool
}

// WithGroupCommit makes concurrent writes (Put and Delete) share one transaction, and so
// one commit and one fsync of the WAL, whenever they are ready at the same moment; on is
// the default. A write that arrives while none is being committed is committed at once,
// alone; those that arrive while a batch is being committed form the next batch (see
// commitBatch). Every request keeps the outcome it has alone.
func WithGroupCommit(on bool) Option {
	return func(o *options) { o.groupCommit = on }
}

// WithQuota makes the store enforce q on every write (see storage.Quota). Opening the
// store then forgets the usage kept by earlier runs, whether q is enabled or not, so
// that each user's usage is recounted from the stored entries at the user's first
// write (a server with quotas off does not keep it up to date). Without this option the
// usage table is left alone (the admin commands open the store so).
func WithQuota(q storage.Quota) Option {
	return func(o *options) { o.quota = &q }
}

// applyOptions runs the parts of opts that act on a freshly opened store.
func (s *Store) applyOptions(ctx context.Context, opts []Option) error {
	o := options{groupCommit: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.groupCommit {
		s.group = groupcommit.New(maxBatch, s.commitBatch)
	}
	if o.quota == nil {
		return nil
	}
	return s.SetQuota(ctx, *o.quota)
}

var _ storage.QuotaStore = (*Store)(nil)

// SetQuota does what WithQuota does, on an open store. It must be called before the
// store is used by several goroutines.
func (s *Store) SetQuota(ctx context.Context, q storage.Quota) error {
	if err := sqlitedb.New(s.write).ClearUsage(ctx); err != nil {
		return interpretError(err)
	}
	s.quota = storage.Quota{}
	if q.Enabled() {
		s.quota = q
	}
	return nil
}

// usage is a user's usage, or a change of it.
type usage struct{ bytes, keys int64 }

// loadUsage returns the usage row of user, creating it from the user's entries if there
// is none. It runs in the write transaction before anything is written.
func loadUsage(ctx context.Context, q *sqlitedb.Queries, user string) (usage, error) {
	row, err := q.GetUsage(ctx, user)
	if err == nil {
		return usage{row.Bytes, row.Keys}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return usage{}, err
	}
	c, err := q.CountUsage(ctx, user)
	if err != nil {
		return usage{}, err
	}
	return usage{c.Bytes, c.Keys}, nil
}

// entrySize returns the size an existing entry counts for, or found = false.
func entrySize(ctx context.Context, q *sqlitedb.Queries, user, storeID, key string) (size int64, found bool, err error) {
	size, err = q.GetEntrySize(ctx, sqlitedb.GetEntrySizeParams{UserToken: user, StoreID: storeID, Key: key})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return size, err == nil, err
}

// putCounted is the body of put with the quota on: each item's previous size is read
// before it is written, and the usage row is checked and updated before the caller
// commits. A refused request returns a *storage.QuotaError and the caller rolls back.
func (s *Store) putCounted(ctx context.Context, q *sqlitedb.Queries, user string, req storage.PutRequest) error {
	base, err := loadUsage(ctx, q, user)
	if err != nil {
		return err
	}
	var d usage
	for _, kv := range req.Deletes {
		size, _, err := entrySize(ctx, q, user, req.StoreID, kv.Key)
		if err != nil {
			return err
		}
		if err := deleteItem(ctx, q, user, req.StoreID, kv); err != nil {
			return err
		}
		d.bytes -= size
		d.keys--
	}
	for _, kv := range req.Puts {
		size, found, err := entrySize(ctx, q, user, req.StoreID, kv.Key)
		if err != nil {
			return err
		}
		if err := putItem(ctx, q, user, req.StoreID, kv); err != nil {
			return err
		}
		d.bytes += int64(len(kv.Key)+len(kv.Value)) - size
		if !found {
			d.keys++
		}
	}
	if err := storage.CheckQuota(s.quota, base.bytes, base.keys, d.bytes, d.keys); err != nil {
		return err
	}
	return q.SetUsage(ctx, sqlitedb.SetUsageParams{UserToken: user, Bytes: base.bytes + d.bytes, Keys: base.keys + d.keys})
}

// deleteCounted is Delete with the quota on, in the caller's transaction: it also takes
// the entry off the user's usage row, if the user has one.
func deleteCounted(ctx context.Context, q *sqlitedb.Queries, user, storeID, key string, version int64) error {
	size, found, err := entrySize(ctx, q, user, storeID, key)
	if err != nil || !found {
		return err
	}
	n, err := deleteKey(ctx, q, user, storeID, key, version)
	if err != nil {
		return err
	}
	if n > 0 {
		return q.AdjustUsage(ctx, sqlitedb.AdjustUsageParams{UserToken: user, Bytes: -size, Keys: -1})
	}
	return nil
}

var _ storage.Admin = (*Store)(nil)

// Usage returns the usage of every user, or of user only, counted from the entries.
func (s *Store) Usage(ctx context.Context, user string) ([]storage.Usage, error) {
	rows, err := sqlitedb.New(s.read).UserUsage(ctx, user)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]storage.Usage, len(rows))
	for i, r := range rows {
		out[i] = storage.Usage{User: r.UserToken, Bytes: r.Bytes, Keys: r.Keys, Stores: r.Stores}
	}
	return out, nil
}

// DeleteUser deletes every entry of user and the user's usage row in one transaction.
func (s *Store) DeleteUser(ctx context.Context, user string) (int64, error) {
	n, err := s.deleteUser(ctx, user)
	return n, interpretError(err)
}

func (s *Store) deleteUser(ctx context.Context, user string) (int64, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() // a no-op once committed
	q := sqlitedb.New(tx)
	if err := q.SetWriter(ctx, ""); err != nil {
		return 0, err
	}
	n, err := q.DeleteUserObjects(ctx, user)
	if err != nil {
		return 0, err
	}
	// The user's change feed goes too (devices must list their stores again), and the
	// lease grants expire.
	if err := q.DeleteUserChanges(ctx, user); err != nil {
		return 0, err
	}
	if err := q.ExpireUserLeases(ctx, sqlitedb.ExpireUserLeasesParams{UserToken: user, Now: time.Now().UnixMilli()}); err != nil {
		return 0, err
	}
	if err := q.DeleteUserImports(ctx, user); err != nil {
		return 0, err
	}
	if err := q.DeleteUserImportSessions(ctx, user); err != nil {
		return 0, err
	}
	if err := q.DeleteUserUsage(ctx, user); err != nil {
		return 0, err
	}
	return n, tx.Commit()
}
