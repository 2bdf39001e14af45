package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/govss/vss/storage"
)

// interpretError maps an error of the driver or of database/sql to what a
// storage.Store returns. It is the only place that looks at driver errors:
//   - nil, the storage sentinels and context errors pass through unchanged;
//   - sql.ErrNoRows is storage.ErrNotFound;
//   - a UNIQUE or PRIMARY KEY constraint violation (creating a key that exists) is
//     storage.ErrConflict;
//   - SQLITE_BUSY or SQLITE_LOCKED, a lock still held when busy_timeout ran out, is
//     storage.ErrUnavailable, which the client may retry;
//   - anything else is an internal failure, wrapped with its cause for the logs.
func interpretError(err error) error {
	if err == nil ||
		errors.Is(err, storage.ErrConflict) ||
		errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, storage.ErrUnavailable) ||
		errors.Is(err, storage.ErrQuotaExceeded) ||
		errors.Is(err, storage.ErrLeaseNotHeld) ||
		errors.Is(err, storage.ErrLeaseHeld) ||
		errors.Is(err, storage.ErrCursorExpired) ||
		errors.Is(err, storage.ErrCursorUnknown) ||
		errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		switch code := serr.Code(); {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE, code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return storage.ErrConflict
		case code&0xff == sqlite3.SQLITE_BUSY, code&0xff == sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite: %w", err)
}
