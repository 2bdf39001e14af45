package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

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
		if err := s.exportStore(ctx, q, user, id, v); err != nil {
			return err
		}
	}
	return nil
}

// ExportStore implements storage.Exporter, in a read transaction as ExportUser.
func (s *Store) ExportStore(ctx context.Context, user, storeID string, v storage.ExportVisitor) error {
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return s.exportStore(ctx, sqlitedb.New(tx), user, storeID, v)
}

// exportStore hands one store to v. The global version row is read first, since the
// dump carries it before the entries. Each page is two statements in the transaction's
// snapshot: the sizes of the next entries, without values, then the entries of the
// page that the byte budget allows (see storage.ExportPageLen).
func (s *Store) exportStore(ctx context.Context, q *sqlitedb.Queries, user, id string, v storage.ExportVisitor) error {
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
	budget := s.exportPageBytes
	if budget <= 0 {
		budget = storage.ExportPageBytes
	}
	after := int64(0)
	sizes := make([]int64, 0, storage.ExportPageRows)
	for {
		rows, err := q.ExportSizes(ctx, sqlitedb.ExportSizesParams{UserToken: user, StoreID: id, After: after, MaxRows: storage.ExportPageRows})
		if err != nil {
			return interpretError(err)
		}
		if len(rows) == 0 {
			return v.EndStore()
		}
		sizes = sizes[:0]
		for _, r := range rows {
			sizes = append(sizes, r.Size)
		}
		last := rows[storage.ExportPageLen(sizes, budget)-1].SortOrder
		entries, err := q.ExportEntries(ctx, sqlitedb.ExportEntriesParams{UserToken: user, StoreID: id, After: after, Last: last})
		if err != nil {
			return interpretError(err)
		}
		for _, r := range entries {
			if r.Key == storage.GlobalVersionKey {
				continue
			}
			if err := v.Entry(storage.KeyValue{Key: r.Key, Version: r.Version, Value: r.Value}); err != nil {
				return err
			}
		}
		after = last
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("sqlite: export: %w", err)
		}
	}
}
