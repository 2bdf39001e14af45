package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

// exportPageSize is how many entries, values included, an export reads at a time.
const exportPageSize = 32

var _ storage.Exporter = (*Store)(nil)

// ExportUser implements storage.Exporter in one read transaction, which in WAL mode is
// a snapshot that concurrent writers do not change.
func (s *Store) ExportUser(ctx context.Context, user string, v storage.ExportVisitor) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	q := sqlitedb.New(tx)
	ids, err := q.ExportStoreIDs(ctx, user)
	if err != nil {
		return interpretError(err)
	}
	for _, id := range ids {
		if err := exportStore(ctx, q, user, id, v); err != nil {
			return err
		}
	}
	return nil
}

// exportStore hands one store to v. The global version row is read first, since the
// dump carries it before the entries.
func exportStore(ctx context.Context, q *sqlitedb.Queries, user, id string, v storage.ExportVisitor) error {
	st := storage.ExportStore{ID: id}
	gv, err := q.GetVersion(ctx, sqlitedb.GetVersionParams{UserToken: user, StoreID: id, Key: storage.GlobalVersionKey})
	switch err := interpretError(err); err {
	case nil:
		st.GlobalVersion, st.HasGlobalVersion = gv, true
	case storage.ErrNotFound:
	default:
		return err
	}
	if err := v.BeginStore(st); err != nil {
		return err
	}
	after := int64(0)
	for {
		rows, err := q.ExportEntries(ctx, sqlitedb.ExportEntriesParams{UserToken: user, StoreID: id, After: after, PageSize: exportPageSize})
		if err != nil {
			return interpretError(err)
		}
		for _, r := range rows {
			after = r.SortOrder
			if r.Key == storage.GlobalVersionKey {
				continue
			}
			if err := v.Entry(storage.KeyValue{Key: r.Key, Version: r.Version, Value: r.Value}); err != nil {
				return err
			}
		}
		if len(rows) < exportPageSize {
			return v.EndStore()
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite: export: %w", err)
		}
	}
}
