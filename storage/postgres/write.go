package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/internal/groupcommit"
)

// write is one request that writes: a PutObjects (put) or a DeleteObject (del). Its
// statements are queued in a pgx.Batch, alone or together with those of other requests
// (see commitBatch); either way one request's statements are always the same.
type write struct {
	// put is set for a PutObjects, with n its number of items; upsert is true when
	// every item is an unconditional put.
	put    *pgdb.PutObjectsParams
	n      int
	upsert bool
	// bytes is the size of the values a put writes.
	bytes int
	// del is set for a DeleteObject.
	del *pgdb.DeleteObjectParams
	// first is the smallest key the request names; batches run their requests in
	// (user, store, first key) order.
	first string
	// writer names the writing device and the lease that fences the write (see
	// BeginRequest).
	writer storage.Writer
	// followed is the store's hint, taken when the write is sent: someone follows the
	// written store. BeginBatch checks it, so once the write committed it is true, and
	// the store's change streams are told of the commit (see feed.go).
	followed bool
}

func (w *write) user() string {
	if w.put != nil {
		return w.put.UserToken
	}
	return w.del.UserToken
}

// keys appends the keys w names to dst.
func (w *write) keys(dst []string) []string {
	if w.put != nil {
		return append(append(dst, w.put.PutKeys...), w.put.DeleteKeys...)
	}
	return append(dst, w.del.Key)
}

func (w *write) storeID() string {
	if w.put != nil {
		return w.put.StoreID
	}
	return w.del.StoreID
}

// begun reports whether w's statements start with BeginRequest: when its store is
// followed (to name its device) or a lease fences it.
func (w *write) begun() bool { return w.followed || w.writer.Lease != nil }

// queueWrite adds the statements of w to b, which starts with BeginBatch (see
// sendBatch): BeginRequest if w.begun(), which names the writing device and checks the
// write's lease (see feed.go); with quotas on, LockUsage (see the comment above
// LockUsage in sql/postgres/queries.sql); then the request's statement.
func (s *Store) queueWrite(ctx context.Context, b *pgx.Batch, w *write) {
	if w.begun() {
		queue(b, func(q *pgdb.Queries) { _ = q.BeginRequest(ctx, beginRequest(w)) })
	}
	quota := s.quota.Enabled()
	if quota {
		queue(b, func(q *pgdb.Queries) { _ = q.LockUsage(ctx, w.user()) })
	}
	switch {
	case w.del != nil && quota:
		queue(b, func(q *pgdb.Queries) { _ = q.DeleteObjectQuota(ctx, pgdb.DeleteObjectQuotaParams(*w.del)) })
	case w.del != nil:
		queue(b, func(q *pgdb.Queries) { _ = q.DeleteObject(ctx, *w.del) })
	case quota:
		arg := w.put
		queue(b, func(q *pgdb.Queries) {
			_, _ = q.PutObjectsQuota(ctx, pgdb.PutObjectsQuotaParams{
				PutKeys:        arg.PutKeys,
				PutVersions:    arg.PutVersions,
				PutValues:      arg.PutValues,
				DeleteKeys:     arg.DeleteKeys,
				DeleteVersions: arg.DeleteVersions,
				UserToken:      arg.UserToken,
				StoreID:        arg.StoreID,
				MaxBytes:       limit(s.quota.MaxBytes),
				MaxKeys:        limit(s.quota.MaxKeys),
			})
		})
	case w.upsert:
		// Only unconditional puts: nothing can conflict, so a plain upsert does.
		queue(b, func(q *pgdb.Queries) {
			_, _ = q.UpsertObjects(ctx, pgdb.UpsertObjectsParams{UserToken: w.put.UserToken, StoreID: w.put.StoreID, Keys: w.put.PutKeys, Vals: w.put.PutValues})
		})
	default:
		queue(b, func(q *pgdb.Queries) { _, _ = q.PutObjects(ctx, *w.put) })
	}
}

// readWrite reads the results of w's statements from br. dbErr is the error of one of
// them, if any, which aborted the transaction; otherwise outcome is w's answer once the
// transaction commits (nil, storage.ErrConflict, a *storage.QuotaError or an internal
// error).
func (s *Store) readWrite(br pgx.BatchResults, w *write) (outcome, dbErr error) {
	if w.begun() {
		if _, err := br.Exec(); err != nil { // BeginRequest
			return nil, err
		}
	}
	quota := s.quota.Enabled()
	if quota {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	switch {
	case w.del != nil:
		_, err := br.Exec()
		return nil, err
	case quota:
		var row pgdb.PutObjectsQuotaRow
		if err := br.QueryRow().Scan(&row.Ok, &row.BytesOk, &row.KeysOk, &row.Written, &row.Counted); err != nil {
			return nil, err
		}
		switch {
		case !row.Ok:
			return storage.ErrConflict, nil
		case !row.BytesOk:
			return &storage.QuotaError{Bytes: true, Limit: s.quota.MaxBytes}, nil
		case !row.KeysOk:
			return &storage.QuotaError{Limit: s.quota.MaxKeys}, nil
		}
		return written(row.Written, w.n), nil
	case w.upsert:
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			return nil, err
		}
		return written(n, w.n), nil
	default:
		var row pgdb.PutObjectsRow
		if err := br.QueryRow().Scan(&row.Ok, &row.Written); err != nil {
			return nil, err
		}
		if !row.Ok {
			return storage.ErrConflict, nil
		}
		return written(row.Written, w.n), nil
	}
}

// written checks that a put wrote one row per item: every item either fails its
// condition (and nothing is written) or writes exactly one row; see the PutObjects query.
func written(rows int64, items int) error {
	if rows != int64(items) {
		return fmt.Errorf("postgres: put wrote %d rows for %d items", rows, items)
	}
	return nil
}

// writeAlone runs w in a transaction of its own (one batch, one round trip), retrying it
// when PostgreSQL rolls it back because of a concurrent request.
func (s *Store) writeAlone(ctx context.Context, w *write) error {
	outs := make([]error, 1)
	err := retry(ctx, func() error {
		_, err := s.sendBatch(ctx, []*write{w}, outs)
		return err
	})
	if err != nil {
		return err
	}
	return outs[0]
}

// sendBatch runs the statements of ws, in order, as one pipelined batch and so in one
// implicit transaction, and sets outs[i] to the outcome of ws[i] once the transaction
// committed. If a statement fails, nothing is committed: culprit is the index of the
// write whose statement failed (-1 when the failure is not a statement's, such as a lost
// connection or a failed commit) and err the error.
//
// The batch starts with BeginBatch, which locks the stores for writing, with the
// store's hints of which are followed; if one is wrong, it fails with VS428, which
// corrects the hints and is retryable.
func (s *Store) sendBatch(ctx context.Context, ws []*write, outs []error) (culprit int, err error) {
	var b pgx.Batch
	begin := pgdb.BeginBatchParams{Users: make([]string, len(ws)), StoreIds: make([]string, len(ws)), Hinted: make([]bool, len(ws))}
	for i, w := range ws {
		w.followed = s.hints.followed(w.user(), w.storeID())
		begin.Users[i], begin.StoreIds[i], begin.Hinted[i] = w.user(), w.storeID(), w.followed
	}
	queue(&b, func(q *pgdb.Queries) { _ = q.BeginBatch(ctx, begin) })
	for _, w := range ws {
		s.queueWrite(ctx, &b, w)
	}
	br := s.pool.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil { // BeginBatch
		_ = br.Close()
		s.hints.correct(err)
		return -1, err
	}
	for i, w := range ws {
		out, dbErr := s.readWrite(br, w)
		if dbErr != nil {
			// The first error is the cause; Close only reports that the batch was aborted.
			_ = br.Close()
			if statementError(dbErr) {
				return i, dbErr
			}
			return -1, dbErr
		}
		outs[i] = out
	}
	return -1, br.Close()
}

// statementError reports whether err is PostgreSQL refusing one statement, which rolled
// back the transaction but says nothing about the others (a conflict raised by
// PutObjects, a serialization failure, a value PostgreSQL cannot store), rather than a
// failure of the connection or of the server, which the store reports as unavailable.
func statementError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return retryable(err) || !errors.Is(interpretError(err), storage.ErrUnavailable)
}

// maxBatch is the most requests one transaction commits together.
const maxBatch = 64

// commitBatch is the groupcommit.Commit of the store: it runs the requests of ws in one
// transaction, a single pipelined batch, so that they share one round trip and one
// flush of the write-ahead log, and gives each the outcome it would have had alone.
//
// The locks of a batch accumulate over its requests. The requests run in (user, store
// id, first key) order, and admit leaves for the next batch those that would take a lock
// out of the one lock order (see PutObjects), so that the batches of several server
// instances on one database never deadlock each other (PostgreSQL would find it only
// after deadlock_timeout). A process has at most one batch in flight (see groupcommit),
// so its own batches never wait for each other.
//
// A request whose conditions fail without an error (ok = false, a quota refused) wrote
// nothing and takes no part in the others' fate. A request whose statement fails rolls
// the transaction back; it is then run alone, which gives it exactly the outcome it has
// alone, and the other requests are run once more as a batch. Should one of them fail
// again, each of those left runs alone. A failure that is no statement's (the
// connection, the commit) is every request's outcome, as it would have been for each
// alone.
func (s *Store) commitBatch(ctx context.Context, ws []*write) []error {
	outs := make([]error, len(ws))
	if len(ws) == 1 {
		outs[0] = s.writeAlone(ctx, ws[0])
		return outs
	}
	order := make([]int, len(ws))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(ws[a].user(), ws[b].user()), cmp.Compare(ws[a].storeID(), ws[b].storeID()), cmp.Compare(ws[a].first, ws[b].first))
	})
	order = admit(ws, order, outs)
	if len(order) == 1 {
		outs[order[0]] = s.writeAlone(ctx, ws[order[0]])
		return outs
	}
	var culprits []int
	for round := 1; len(order) > 0; round++ {
		if round > 2 {
			s.runEachAlone(ctx, ws, order, outs)
			break
		}
		culprit, err := s.sendShared(ctx, ws, order, outs)
		if culprit < 0 {
			if err != nil {
				for _, i := range order {
					outs[i] = err
				}
			}
			break
		}
		// The culprit's statement failed and the transaction was rolled back. The
		// others run once more first, then the culprit alone.
		culprits = append(culprits, order[culprit])
		order = slices.Delete(order, culprit, culprit+1)
	}
	for _, c := range culprits {
		outs[c] = s.writeAlone(ctx, ws[c])
	}
	return outs
}

// admit returns the writes of order (sorted by user, store id and first key) that one
// transaction can run without breaking the lock order, and sets the outcome of the
// others to groupcommit.Later. Every statement takes its row locks in key order (byte
// order); requests of different users' stores, taken in (user, store id) order, keep to
// the order (the usage row a request locks first with quotas on comes before its user's
// rows). Within one user's store, a request joins only if each of its keys is one the
// transaction already holds or comes after every key it holds, so that a transaction
// never waits for a key before one it holds, and the batches of several server
// instances on one database cannot deadlock each other or single requests. The first
// write always joins.
func admit(ws []*write, order []int, outs []error) []int {
	type held struct {
		keys map[string]bool
		max  string
	}
	var (
		cur       [2]string
		h         *held
		admitted  = order[:0:0]
		keysOfReq []string
	)
	for _, i := range order {
		w := ws[i]
		if k := [2]string{w.user(), w.storeID()}; h == nil || k != cur {
			cur, h = k, &held{keys: map[string]bool{}}
		}
		keysOfReq = w.keys(keysOfReq[:0])
		if len(h.keys) > 0 && slices.ContainsFunc(keysOfReq, func(key string) bool { return !h.keys[key] && key <= h.max }) {
			outs[i] = groupcommit.Later
			continue
		}
		for _, key := range keysOfReq {
			h.keys[key] = true
			h.max = max(h.max, key)
		}
		admitted = append(admitted, i)
	}
	return admitted
}

// sendShared runs the writes ws[order[...]] as one batch, again while PostgreSQL rolls it
// back because of a concurrent transaction (as writeAlone does), and fills outs with
// their outcomes once it committed. If a statement failed otherwise it returns the
// position in order of its write, and the batch is rolled back; a failure that is no
// statement's is returned interpreted, with culprit -1.
func (s *Store) sendShared(ctx context.Context, ws []*write, order []int, outs []error) (culprit int, err error) {
	batch := make([]*write, len(order))
	for k, i := range order {
		batch[k] = ws[i]
	}
	res := make([]error, len(batch))
	for attempt := 1; ; attempt++ {
		culprit, err = s.sendBatch(ctx, batch, res)
		if err == nil {
			for k, i := range order {
				outs[i] = res[k]
			}
			return -1, nil
		}
		if !retryable(err) || attempt == retryAttempts || !backoff(ctx, attempt) {
			if culprit >= 0 {
				return culprit, err
			}
			return -1, interpretError(err)
		}
	}
}

// runEachAlone runs every write of order in a transaction of its own, concurrently: a
// single request takes its locks in key order, so they cannot deadlock each other.
func (s *Store) runEachAlone(ctx context.Context, ws []*write, order []int, outs []error) {
	done := make(chan struct{}, len(order))
	for _, i := range order {
		go func() {
			outs[i] = s.writeAlone(ctx, ws[i])
			done <- struct{}{}
		}()
	}
	for range order {
		<-done
	}
}

// groupCommit is the store's group commit: nil when every request commits on its own.
type groupCommit = groupcommit.Queue[*write]
