package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

var _ storage.Exporter = (*Store)(nil)

// ExportUser implements storage.Exporter in one read-only REPEATABLE READ transaction,
// whose snapshot concurrent writes do not change. Each page is one statement that ends
// the page at the byte budget itself (see ExportEntries in sql/postgres/queries.sql).
func (s *Store) ExportUser(ctx context.Context, user string, v storage.ExportVisitor) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		stores, err := q.ExportStores(ctx, user)
		if err != nil {
			return err
		}
		for _, st := range stores {
			es := storage.ExportStore{ID: st.StoreID, GlobalVersion: st.GlobalVersion.Int64, HasGlobalVersion: st.GlobalVersion.Valid}
			if err := s.exportStore(ctx, q, user, es, v); err != nil {
				return err
			}
		}
		return nil
	})
	return interpretError(err)
}

// ExportStore implements storage.Exporter, in a snapshot as ExportUser.
func (s *Store) ExportStore(ctx context.Context, user, storeID string, v storage.ExportVisitor) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		es := storage.ExportStore{ID: storeID}
		gv, err := q.GetObject(ctx, pgdb.GetObjectParams{UserToken: user, StoreID: storeID, Key: storage.GlobalVersionKey})
		switch {
		case err == nil:
			es.GlobalVersion, es.HasGlobalVersion = gv.Version, true
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return s.exportStore(ctx, q, user, es, v)
	})
	return interpretError(err)
}

// exportStore hands one store to v, page by page in sort order.
func (s *Store) exportStore(ctx context.Context, q *pgdb.Queries, user string, st storage.ExportStore, v storage.ExportVisitor) error {
	if err := v.BeginStore(st); err != nil {
		return err
	}
	budget := s.exportPageBytes
	if budget <= 0 {
		budget = storage.ExportPageBytes
	}
	after := int64(0)
	for {
		rows, err := q.ExportEntries(ctx, pgdb.ExportEntriesParams{UserToken: user, StoreID: st.ID, After: after,
			MaxRows: storage.ExportPageRows, MaxBytes: budget})
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return v.EndStore()
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
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("postgres: export: %w", err)
		}
	}
}
