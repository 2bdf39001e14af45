package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	pgdb "github.com/govss/vss/db/postgres"
	"github.com/govss/vss/storage"
)

var _ storage.Importer = (*Store)(nil)

// inTx runs f in a transaction and commits it if f succeeds. The errors of the import
// protocol pass as they are; the others go through interpretError.
func (s *Store) inTx(ctx context.Context, f func(q *pgdb.Queries) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return f(s.q.WithTx(tx)) })
	var qe *storage.QuotaError
	if err == nil || errors.Is(err, storage.ErrNotEmpty) || errors.Is(err, storage.ErrConflict) || errors.As(err, &qe) {
		return err
	}
	return interpretError(err)
}

// addImportUsage counts entries against the user's quota when quotas are on: it locks
// the user's usage row as every write does (LockUsage), then adds to it.
func (s *Store) addImportUsage(ctx context.Context, q *pgdb.Queries, user string, dBytes, dKeys int64) error {
	if !s.quota.Enabled() {
		return nil
	}
	if err := q.LockUsage(ctx, user); err != nil {
		return err
	}
	u, err := q.AddUsage(ctx, pgdb.AddUsageParams{UserToken: user, Bytes: dBytes, Keys: dKeys})
	if err != nil {
		return err
	}
	return storage.CheckQuota(s.quota, u.Bytes-dBytes, u.Keys-dKeys, dBytes, dKeys)
}

// BeginImport implements storage.Importer.
func (s *Store) BeginImport(ctx context.Context, user, importID string, st storage.ExportStore) (state storage.ImportState, err error) {
	err = s.inTx(ctx, func(q *pgdb.Queries) error {
		rec, err := q.GetImport(ctx, pgdb.GetImportParams{UserToken: user, StoreID: st.ID})
		switch {
		case err == nil && rec.ImportID == importID:
			state = storage.ImportState{Entries: rec.Entries, Done: rec.Done, SHA256: rec.Sha256}
			return nil
		case err == nil:
			return &storage.NotEmptyError{StoreID: st.ID}
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if err := q.LockStoreWrite(ctx, pgdb.LockStoreWriteParams{UserToken: user, StoreID: st.ID}); err != nil {
			return err
		}
		has, err := q.StoreHasRows(ctx, pgdb.StoreHasRowsParams{UserToken: user, StoreID: st.ID})
		if err != nil {
			return err
		}
		if has {
			return &storage.NotEmptyError{StoreID: st.ID}
		}
		// The record is inserted first: of two importers racing for an empty store, the
		// second waits on it and then fails on its primary key.
		if err := q.PutImport(ctx, pgdb.PutImportParams{UserToken: user, StoreID: st.ID, ImportID: importID}); err != nil {
			return err
		}
		if !st.HasGlobalVersion {
			return nil
		}
		if err := s.addImportUsage(ctx, q, user, int64(len(storage.GlobalVersionKey)), 1); err != nil {
			return err
		}
		_, err = q.InsertImported(ctx, pgdb.InsertImportedParams{UserToken: user, StoreID: st.ID,
			Keys: []string{storage.GlobalVersionKey}, Versions: []int64{st.GlobalVersion}, Vals: [][]byte{nil}})
		return err
	})
	return state, err
}

// ImportEntries implements storage.Importer: the entries are one statement.
func (s *Store) ImportEntries(ctx context.Context, user, importID, storeID string, from int64, entries []storage.KeyValue) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		rec, err := q.GetImport(ctx, pgdb.GetImportParams{UserToken: user, StoreID: storeID})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && (rec.ImportID != importID || rec.Done || rec.Entries != from)) {
			return fmt.Errorf("postgres: import %q of store %q is not at entry %d: %w", importID, storeID, from, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := q.LockStoreWrite(ctx, pgdb.LockStoreWriteParams{UserToken: user, StoreID: storeID}); err != nil {
			return err
		}
		dBytes, dKeys := storage.ImportSize(entries)
		if err := s.addImportUsage(ctx, q, user, dBytes, dKeys); err != nil {
			return err
		}
		arg := pgdb.InsertImportedParams{UserToken: user, StoreID: storeID,
			Keys: make([]string, len(entries)), Versions: make([]int64, len(entries)), Vals: make([][]byte, len(entries))}
		for i, kv := range entries {
			arg.Keys[i], arg.Versions[i], arg.Vals[i] = kv.Key, kv.Version, kv.Value
			if arg.Vals[i] == nil {
				arg.Vals[i] = []byte{}
			}
		}
		if _, err := q.InsertImported(ctx, arg); err != nil {
			return err
		}
		return q.PutImport(ctx, pgdb.PutImportParams{UserToken: user, StoreID: storeID, ImportID: importID,
			Entries: from + int64(len(entries))})
	})
}

// EndImport implements storage.Importer.
func (s *Store) EndImport(ctx context.Context, user, importID, storeID string, sha256 []byte) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		rec, err := q.GetImport(ctx, pgdb.GetImportParams{UserToken: user, StoreID: storeID})
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && rec.ImportID != importID) {
			return fmt.Errorf("postgres: store %q has no import %q: %w", storeID, importID, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		return q.PutImport(ctx, pgdb.PutImportParams{UserToken: user, StoreID: storeID, ImportID: importID,
			Entries: rec.Entries, Done: true, Sha256: sha256})
	})
}

// FinishImport implements storage.Importer.
func (s *Store) FinishImport(ctx context.Context, user, importID string) error {
	return s.inTx(ctx, func(q *pgdb.Queries) error {
		if err := q.DeleteImport(ctx, pgdb.DeleteImportParams{UserToken: user, ImportID: importID}); err != nil {
			return err
		}
		return q.DeleteImportSessions(ctx, pgdb.DeleteImportSessionsParams{UserToken: user, ImportID: importID})
	})
}

// AbortImport implements storage.Importer: one transaction deletes each store as
// DeleteStore does, then the records and the session.
func (s *Store) AbortImport(ctx context.Context, user, importID string) (n int64, err error) {
	err = s.inTx(ctx, func(q *pgdb.Queries) error {
		stores, err := q.ImportedStores(ctx, pgdb.ImportedStoresParams{UserToken: user, ImportID: importID})
		if err != nil {
			return err
		}
		// Every feed head first, then each store's usage and rows: the one lock order
		// of writes, across the stores (sorted by user and store id).
		for _, st := range stores {
			if err := q.LockStoreFeed(ctx, pgdb.LockStoreFeedParams{UserToken: st.UserToken, StoreID: st.StoreID}); err != nil {
				return err
			}
		}
		for _, st := range stores {
			if _, err := deleteStore(ctx, q, st.UserToken, st.StoreID); err != nil {
				return err
			}
		}
		n = int64(len(stores))
		if err := q.DeleteImport(ctx, pgdb.DeleteImportParams{UserToken: user, ImportID: importID}); err != nil {
			return err
		}
		return q.DeleteImportSessions(ctx, pgdb.DeleteImportSessionsParams{UserToken: user, ImportID: importID})
	})
	return n, err
}

// ImportSession implements storage.Importer.
func (s *Store) ImportSession(ctx context.Context, user, importID string) (storage.ImportSession, bool, error) {
	row, err := s.q.GetImportSession(ctx, pgdb.GetImportSessionParams{UserToken: user, ImportID: importID})
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ImportSession{}, false, nil
	}
	if err != nil {
		return storage.ImportSession{}, false, interpretError(err)
	}
	return storage.ImportSession{Offset: row.NextOffset, Checkpoint: row.Checkpoint, Done: row.Done,
		Stores: row.Stores, Entries: row.Entries, SHA256: row.Sha256}, true, nil
}

// SaveImportSession implements storage.Importer.
func (s *Store) SaveImportSession(ctx context.Context, user, importID string, sess storage.ImportSession) error {
	return interpretError(s.q.PutImportSession(ctx, pgdb.PutImportSessionParams{UserToken: user, ImportID: importID,
		NextOffset: sess.Offset, Checkpoint: sess.Checkpoint, Done: sess.Done, Stores: sess.Stores, Entries: sess.Entries, Sha256: sess.SHA256}))
}

var _ storage.Deleter = (*Store)(nil)

// StoreStats implements storage.Deleter.
func (s *Store) StoreStats(ctx context.Context, user, storeID string) (storage.StoreStats, error) {
	row, err := s.q.StoreStats(ctx, pgdb.StoreStatsParams{UserToken: user, StoreID: storeID})
	return storage.StoreStats{Keys: row.Keys, Bytes: row.Bytes}, interpretError(err)
}

// DeleteStore implements storage.Deleter in one transaction.
func (s *Store) DeleteStore(ctx context.Context, user, storeID string) (st storage.StoreStats, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		st, err = deleteStore(ctx, s.q.WithTx(tx), user, storeID)
		return err
	})
	return st, interpretError(err)
}

// deleteStore deletes a store in the transaction of q. It takes the store's feed head
// first and then the user's usage row, in the one lock order of writes (as DeleteUser
// does); the usage row is deleted, to be counted again from the rows that remain.
func deleteStore(ctx context.Context, q *pgdb.Queries, user, storeID string) (storage.StoreStats, error) {
	if err := q.LockStoreFeed(ctx, pgdb.LockStoreFeedParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.LockUsage(ctx, user); err != nil {
		return storage.StoreStats{}, err
	}
	row, err := q.StoreStats(ctx, pgdb.StoreStatsParams{UserToken: user, StoreID: storeID})
	if err != nil {
		return storage.StoreStats{}, err
	}
	if _, err := q.DeleteStoreObjects(ctx, pgdb.DeleteStoreObjectsParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.DeleteStoreChanges(ctx, pgdb.DeleteStoreChangesParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.ExpireStoreLeases(ctx, pgdb.ExpireStoreLeasesParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.DeleteStoreImport(ctx, pgdb.DeleteStoreImportParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	return storage.StoreStats{Keys: row.Keys, Bytes: row.Bytes}, q.DeleteUserUsage(ctx, user)
}
