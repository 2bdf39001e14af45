package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNoStore is the error of Open with WithExistingStore when the database holds no VSS
// table.
var ErrNoStore = errors.New("the database holds no VSS store (no vss_db table)")

// WithExistingStore has Open refuse, creating nothing, a database that holds no VSS
// store yet (no vss_db table): tools that administer a store use it so that a mistyped
// database is reported instead of being given an empty store. A store that exists gets
// its pending migrations as usual.
func WithExistingStore() Option {
	return func(o *options) { o.existing = true }
}

// checkExisting returns ErrNoStore when the database of connConfig has no vss_db table in
// its search path.
func checkExisting(ctx context.Context, connConfig *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, connConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", interpretError(err))
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('vss_db') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for vss_db: %w", interpretError(err))
	}
	if !exists {
		return ErrNoStore
	}
	return nil
}
