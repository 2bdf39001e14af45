package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

// WithQuota makes the store enforce q on every write (see storage.Quota). Open then
// forgets the usage kept by earlier runs, whether q is enabled or not, so that each
// user's usage is recounted from vss_db at the user's first write: a server with quotas
// off does not keep it, and neither does the reference server. Without this option Open
// leaves the usage table alone (the admin commands open the store so).
//
// With a quota, a PutObjects or a DeleteObject is one pipelined batch of two statements
// (one round trip, see LockUsage in sql/postgres/queries.sql) and the writes of one user
// take turns on a row lock; with a zero Quota nothing changes: one statement, no lock.
func WithQuota(q storage.Quota) Option {
	return func(o *options) { o.quota = &q }
}

// applyQuotaOption runs at Open when WithQuota was given.
func (s *Store) applyQuotaOption(ctx context.Context, q *storage.Quota) error {
	if q == nil {
		return nil
	}
	return s.SetQuota(ctx, *q)
}

var _ storage.QuotaStore = (*Store)(nil)

// SetQuota does what WithQuota does, on an open store. It must be called before the
// store is used by several goroutines.
func (s *Store) SetQuota(ctx context.Context, q storage.Quota) error {
	if err := s.q.ClearUsage(ctx); err != nil {
		return fmt.Errorf("postgres: reset user usage: %w", interpretError(err))
	}
	s.quota = storage.Quota{}
	if q.Enabled() {
		s.quota = q
	}
	return nil
}

// limit returns a quota limit for the query, where no limit is the largest number.
func limit(n int64) int64 {
	if n <= 0 {
		return math.MaxInt64
	}
	return n
}

// recorder is a pgdb.DBTX that runs nothing: it keeps the SQL and arguments of the
// query it is given, so that a generated query can be queued in a batch with its
// arguments exactly as sqlc passes them.
type recorder struct {
	sql  string
	args []any
}

var errRecorded = errors.New("postgres: query recorded, not run")

func (r *recorder) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	r.sql, r.args = sql, args
	return pgconn.CommandTag{}, errRecorded
}

func (r *recorder) Query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.sql, r.args = sql, args
	return nil, errRecorded
}

func (r *recorder) QueryRow(_ context.Context, sql string, args ...any) pgx.Row {
	r.sql, r.args = sql, args
	return recordedRow{}
}

type recordedRow struct{}

func (recordedRow) Scan(...any) error { return errRecorded }

// queue adds the query that call makes to b.
func queue(b *pgx.Batch, call func(q *pgdb.Queries)) {
	var r recorder
	call(pgdb.New(&r))
	b.Queue(r.sql, r.args...)
}

var _ storage.Admin = (*Store)(nil)

// Usage returns the usage of every user, or of user only, counted from vss_db.
func (s *Store) Usage(ctx context.Context, user string) ([]storage.Usage, error) {
	rows, err := s.q.UserUsage(ctx, user)
	if err != nil {
		return nil, interpretError(err)
	}
	out := make([]storage.Usage, len(rows))
	for i, r := range rows {
		out[i] = storage.Usage{User: r.UserToken, Bytes: r.Bytes, Keys: r.Keys, Stores: r.Stores}
	}
	return out, nil
}

// DeleteUser deletes every entry of user and the user's usage row in one transaction,
// with the user's change feed (devices must list their stores again) and lease grants
// (which expire), and its imports. It takes the user's feed heads first, as every write takes those of
// the followed stores it writes, then the usage lock, like every write while quotas are
// on, so that it neither deadlocks with nor interleaves with the user's writes.
func (s *Store) DeleteUser(ctx context.Context, user string) (n int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.LockUserFeeds(ctx, user); err != nil {
			return err
		}
		if err := q.LockUsage(ctx, user); err != nil {
			return err
		}
		if n, err = q.DeleteUserObjects(ctx, user); err != nil {
			return err
		}
		if err := q.DeleteUserChanges(ctx, user); err != nil {
			return err
		}
		if err := q.ExpireUserLeases(ctx, user); err != nil {
			return err
		}
		if err := q.DeleteUserImports(ctx, user); err != nil {
			return err
		}
		if err := q.DeleteUserImportSessions(ctx, user); err != nil {
			return err
		}
		return q.DeleteUserUsage(ctx, user)
	})
	return n, interpretError(err)
}
