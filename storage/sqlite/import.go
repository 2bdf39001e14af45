package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlitedb "github.com/govss/vss/db/sqlite"
	"github.com/govss/vss/storage"
)

var _ storage.Importer = (*Store)(nil)

// inWrite runs f in a transaction of the write connection, with no writing device for
// the change feed, and commits it if f succeeds. Its queries go through statements
// prepared once for the transaction (txStatements), as the writes' do, so that a batch
// of an import compiles its insert once.
func (s *Store) inWrite(ctx context.Context, f func(q *sqlitedb.Queries) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback() // a no-op once committed
	q := sqlitedb.New(newTxStatements(tx))
	if err := q.SetWriter(ctx, ""); err != nil {
		return interpretError(err)
	}
	if err := f(q); err != nil {
		var qe *storage.QuotaError
		if errors.Is(err, storage.ErrNotEmpty) || errors.Is(err, storage.ErrConflict) || errors.As(err, &qe) {
			return err
		}
		return interpretError(err)
	}
	return interpretError(tx.Commit())
}

// addImportUsage counts entries against the user's quota, when quotas are on.
func (s *Store) addImportUsage(ctx context.Context, q *sqlitedb.Queries, user string, dBytes, dKeys int64) error {
	if !s.quota.Enabled() {
		return nil
	}
	base, err := loadUsage(ctx, q, user)
	if err != nil {
		return err
	}
	if err := storage.CheckQuota(s.quota, base.bytes, base.keys, dBytes, dKeys); err != nil {
		return err
	}
	return q.SetUsage(ctx, sqlitedb.SetUsageParams{UserToken: user, Bytes: base.bytes + dBytes, Keys: base.keys + dKeys})
}

// BeginImport implements storage.Importer.
func (s *Store) BeginImport(ctx context.Context, user, importID string, st storage.ExportStore) (state storage.ImportState, err error) {
	err = s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		rec, err := q.GetImport(ctx, sqlitedb.GetImportParams{UserToken: user, StoreID: st.ID})
		switch {
		case err == nil && rec.ImportID == importID:
			state = storage.ImportState{Entries: rec.Entries, Done: rec.Done != 0, SHA256: rec.Sha256}
			return nil
		case err == nil:
			return &storage.NotEmptyError{StoreID: st.ID}
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		has, err := q.StoreHasRows(ctx, sqlitedb.StoreHasRowsParams{UserToken: user, StoreID: st.ID})
		if err != nil {
			return err
		}
		if has {
			return &storage.NotEmptyError{StoreID: st.ID}
		}
		if st.HasGlobalVersion {
			if err := s.addImportUsage(ctx, q, user, int64(len(storage.GlobalVersionKey)), 1); err != nil {
				return err
			}
			if err := q.InsertImported(ctx, sqlitedb.InsertImportedParams{UserToken: user, StoreID: st.ID,
				Key: storage.GlobalVersionKey, Version: st.GlobalVersion}); err != nil {
				return err
			}
		}
		return q.PutImport(ctx, sqlitedb.PutImportParams{UserToken: user, StoreID: st.ID, ImportID: importID})
	})
	return state, err
}

// ImportEntries implements storage.Importer: one INSERT per entry (in process, no round
// trip), each taking the next sort order, through one statement prepared for the batch.
func (s *Store) ImportEntries(ctx context.Context, user, importID, storeID string, from int64, entries []storage.KeyValue) error {
	return s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		if err := checkImport(ctx, q, user, importID, storeID, from); err != nil {
			return err
		}
		dBytes, dKeys := storage.ImportSize(entries)
		if err := s.addImportUsage(ctx, q, user, dBytes, dKeys); err != nil {
			return err
		}
		for _, kv := range entries {
			if err := q.InsertImported(ctx, sqlitedb.InsertImportedParams{UserToken: user, StoreID: storeID,
				Key: kv.Key, Value: kv.Value, Version: kv.Version}); err != nil {
				return err
			}
		}
		return q.PutImport(ctx, sqlitedb.PutImportParams{UserToken: user, StoreID: storeID, ImportID: importID,
			Entries: from + int64(len(entries))})
	})
}

// checkImport checks that the store's record is of importID, not complete, at from.
func checkImport(ctx context.Context, q *sqlitedb.Queries, user, importID, storeID string, from int64) error {
	rec, err := q.GetImport(ctx, sqlitedb.GetImportParams{UserToken: user, StoreID: storeID})
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (rec.ImportID != importID || rec.Done != 0 || rec.Entries != from)) {
		return fmt.Errorf("sqlite: import %q of store %q is not at entry %d: %w", importID, storeID, from, storage.ErrConflict)
	}
	return err
}

// EndImport implements storage.Importer.
func (s *Store) EndImport(ctx context.Context, user, importID, storeID string, sha256 []byte) error {
	return s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		rec, err := q.GetImport(ctx, sqlitedb.GetImportParams{UserToken: user, StoreID: storeID})
		if errors.Is(err, sql.ErrNoRows) || (err == nil && rec.ImportID != importID) {
			return fmt.Errorf("sqlite: store %q has no import %q: %w", storeID, importID, storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		return q.PutImport(ctx, sqlitedb.PutImportParams{UserToken: user, StoreID: storeID, ImportID: importID,
			Entries: rec.Entries, Done: 1, Sha256: sha256})
	})
}

// FinishImport implements storage.Importer.
func (s *Store) FinishImport(ctx context.Context, user, importID string) error {
	return s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		if err := q.DeleteImport(ctx, sqlitedb.DeleteImportParams{UserToken: user, ImportID: importID}); err != nil {
			return err
		}
		return q.DeleteImportSessions(ctx, sqlitedb.DeleteImportSessionsParams{UserToken: user, ImportID: importID})
	})
}

// AbortImport implements storage.Importer: one transaction deletes each store as
// DeleteStore does, then the records and the session.
func (s *Store) AbortImport(ctx context.Context, user, importID string) (n int64, err error) {
	err = s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		stores, err := q.ImportedStores(ctx, sqlitedb.ImportedStoresParams{UserToken: user, ImportID: importID})
		if err != nil {
			return err
		}
		for _, st := range stores {
			if _, err := deleteStore(ctx, q, st.UserToken, st.StoreID); err != nil {
				return err
			}
		}
		n = int64(len(stores))
		if err := q.DeleteImport(ctx, sqlitedb.DeleteImportParams{UserToken: user, ImportID: importID}); err != nil {
			return err
		}
		return q.DeleteImportSessions(ctx, sqlitedb.DeleteImportSessionsParams{UserToken: user, ImportID: importID})
	})
	return n, err
}

// ImportSession implements storage.Importer.
func (s *Store) ImportSession(ctx context.Context, user, importID string) (storage.ImportSession, bool, error) {
	row, err := sqlitedb.New(s.read).GetImportSession(ctx, sqlitedb.GetImportSessionParams{UserToken: user, ImportID: importID})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ImportSession{}, false, nil
	}
	if err != nil {
		return storage.ImportSession{}, false, interpretError(err)
	}
	return storage.ImportSession{Offset: row.NextOffset, Checkpoint: row.Checkpoint, Done: row.Done != 0,
		Stores: row.Stores, Entries: row.Entries, SHA256: row.Sha256}, true, nil
}

// SaveImportSession implements storage.Importer.
func (s *Store) SaveImportSession(ctx context.Context, user, importID string, sess storage.ImportSession) error {
	return s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		done := int64(0)
		if sess.Done {
			done = 1
		}
		return q.PutImportSession(ctx, sqlitedb.PutImportSessionParams{UserToken: user, ImportID: importID,
			NextOffset: sess.Offset, Checkpoint: sess.Checkpoint, Done: done, Stores: sess.Stores, Entries: sess.Entries,
			Sha256: sess.SHA256, Now: time.Now().UnixMilli()})
	})
}

var _ storage.Deleter = (*Store)(nil)

// StoreStats implements storage.Deleter.
func (s *Store) StoreStats(ctx context.Context, user, storeID string) (storage.StoreStats, error) {
	row, err := sqlitedb.New(s.read).StoreStats(ctx, sqlitedb.StoreStatsParams{UserToken: user, StoreID: storeID})
	return storage.StoreStats{Keys: row.Keys, Bytes: row.Bytes}, interpretError(err)
}

// DeleteStore implements storage.Deleter in one transaction of the write connection.
func (s *Store) DeleteStore(ctx context.Context, user, storeID string) (st storage.StoreStats, err error) {
	err = s.inWrite(ctx, func(q *sqlitedb.Queries) error {
		st, err = deleteStore(ctx, q, user, storeID)
		return err
	})
	return st, err
}

// deleteStore deletes a store in the transaction of q; the user's usage row is deleted,
// to be counted again from the rows that remain.
func deleteStore(ctx context.Context, q *sqlitedb.Queries, user, storeID string) (storage.StoreStats, error) {
	row, err := q.StoreStats(ctx, sqlitedb.StoreStatsParams{UserToken: user, StoreID: storeID})
	if err != nil {
		return storage.StoreStats{}, err
	}
	if _, err := q.DeleteStoreObjects(ctx, sqlitedb.DeleteStoreObjectsParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.DeleteStoreChanges(ctx, sqlitedb.DeleteStoreChangesParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.ExpireStoreLeases(ctx, sqlitedb.ExpireStoreLeasesParams{UserToken: user, StoreID: storeID, Now: time.Now().UnixMilli()}); err != nil {
		return storage.StoreStats{}, err
	}
	if err := q.DeleteStoreImport(ctx, sqlitedb.DeleteStoreImportParams{UserToken: user, StoreID: storeID}); err != nil {
		return storage.StoreStats{}, err
	}
	return storage.StoreStats{Keys: row.Keys, Bytes: row.Bytes}, q.DeleteUserUsage(ctx, user)
}
