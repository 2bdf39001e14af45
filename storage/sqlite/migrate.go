package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	vsssql "github.com/govss/vss/sql"
)

// migration is one numbered schema file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrate brings the schema of db up to date with the embedded migrations.
func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := migrationFS()
	if err != nil {
		return err
	}
	return applyMigrations(ctx, db, fsys)
}

// migrationFS returns the directory of the embedded SQLite migrations.
func migrationFS() (fs.FS, error) {
	fsys, err := fs.Sub(vsssql.SQLiteMigrations, "sqlite/migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	return fsys, nil
}

// applyMigrations applies the migrations of fsys that db has not seen yet. The schema
// version is SQLite's PRAGMA user_version, which lives in the database header and
// changes in the same transaction as the schema, so a crash leaves all pending
// migrations applied or none. The transaction begins IMMEDIATE (db's _txlock), so two
// processes opening a new file at once take turns instead of both creating the tables.
// A database whose version is newer than the last migration is refused: it was written
// by a newer server.
func applyMigrations(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	migrations, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	latest := 0
	if len(migrations) > 0 {
		latest = migrations[len(migrations)-1].version
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return interpretError(err)
	}
	defer tx.Rollback() // a no-op once committed

	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return interpretError(err)
	}
	if current > latest {
		return fmt.Errorf("sqlite: database schema version %d is newer than this server's %d", current, latest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, interpretError(err))
		}
		// PRAGMA takes no bound parameters; m.version is an integer we parsed.
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(m.version)); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", m.name, interpretError(err))
		}
	}
	return interpretError(tx.Commit())
}

// readMigrations returns the *.sql files of fsys, named NNNN_description.sql, in order.
// Their numbers must run 1, 2, 3... without gaps or duplicates.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	migrations := make([]migration, 0, len(names))
	for _, name := range names {
		num, _, ok := strings.Cut(path.Base(name), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("sqlite: migration %s: name does not start with a positive number and '_'", name)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("sqlite: migration %s: %w", name, err)
		}
		migrations = append(migrations, migration{version: version, name: name, sql: string(text)})
	}
	slices.SortFunc(migrations, func(a, b migration) int { return a.version - b.version })
	for i, m := range migrations {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %s: expected number %d", m.name, i+1)
		}
	}
	return migrations, nil
}
