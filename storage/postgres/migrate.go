package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	vsssql "github.com/govss/vss/sql"
)

// migrationsDir is where sql.PostgresMigrations keeps the migration files.
const migrationsDir = "postgres/migrations"

// migrationLockID is the key of the advisory lock held while migrations run, so that
// servers starting at the same time apply each migration once, one after the other. It
// is the ASCII of "VSSMIGR1"; nothing else in a VSS database uses advisory locks.
const migrationLockID int64 = 0x5653534d49475231

// Our schema bookkeeping. The reference server keeps its own in vss_db_version and
// vss_db_upgrades; those are left alone.
const (
	createMigrationsTable = `CREATE TABLE IF NOT EXISTS vss_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
	migrationsTableExists   = `SELECT to_regclass('vss_schema_migrations') IS NOT NULL`
	selectAppliedMigrations = `SELECT version FROM vss_schema_migrations`
	insertAppliedMigration  = `INSERT INTO vss_schema_migrations (version, name) VALUES ($1, $2)`
)

// migration is one numbered file of sql.PostgresMigrations.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the migrations of fsys in version order. A file is named
// NNNN_description.sql; versions must be positive and distinct.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, migrationsDir)
	if err != nil {
		return nil, fmt.Errorf("postgres: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		prefix, _, ok := strings.Cut(name, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("postgres: migration %s: name must start with a positive number and '_'", name)
		}
		body, err := fs.ReadFile(fsys, path.Join(migrationsDir, name))
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: version, name: name, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("postgres: migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the pending migrations of sql.PostgresMigrations to the database of
// connConfig. It works on its own connection, which holds a session advisory lock for
// the whole run and is closed at the end, so the lock is released even when the run
// fails half way. Each migration runs in its own transaction together with its
// bookkeeping row: it is applied entirely, and recorded, or not at all.
func migrate(ctx context.Context, connConfig *pgx.ConnConfig, logger *slog.Logger) (err error) {
	ms, err := loadMigrations(vsssql.PostgresMigrations)
	if err != nil {
		return err
	}

	conn, err := pgx.ConnectConfig(ctx, connConfig.Copy())
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", interpretError(err))
	}
	defer func() {
		// Closing the session releases the advisory lock.
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("postgres: close migration connection: %w", interpretError(cerr))
		}
	}()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return fmt.Errorf("postgres: take migration lock: %w", interpretError(err))
	}
	// Create the bookkeeping table only when it is missing: a role that may not create
	// tables can still run a server on a database that is up to date.
	var exists bool
	if err := conn.QueryRow(ctx, migrationsTableExists).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look for vss_schema_migrations: %w", interpretError(err))
	}
	if !exists {
		if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("postgres: create vss_schema_migrations: %w", interpretError(err))
		}
	}
	rows, err := conn.Query(ctx, selectAppliedMigrations)
	if err != nil {
		return fmt.Errorf("postgres: read applied migrations: %w", interpretError(err))
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: read applied migrations: %w", interpretError(err))
	}
	if latest := slices.Max(append(applied, 0)); len(ms) > 0 && int(latest) > ms[len(ms)-1].version {
		return fmt.Errorf("postgres: the database schema is at version %d, newer than this server's %d: run a newer server",
			latest, ms[len(ms)-1].version)
	}

	for _, m := range ms {
		if slices.Contains(applied, int32(m.version)) {
			continue
		}
		if err := applyMigration(ctx, conn, m); err != nil {
			return err
		}
		logger.InfoContext(ctx, "applied database migration", slog.Int("version", m.version), slog.String("name", m.name))
	}
	return nil
}

// applyMigration runs m and records it in one transaction.
func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migration %s: begin: %w", m.name, interpretError(err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit

	// Without arguments pgx sends the file with the simple query protocol, which runs
	// every statement in it.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("postgres: migration %s: %w", m.name, interpretError(err))
	}
	if _, err := tx.Exec(ctx, insertAppliedMigration, m.version, m.name); err != nil {
		return fmt.Errorf("postgres: migration %s: record: %w", m.name, interpretError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			return fmt.Errorf("postgres: migration %s: rolled back at commit", m.name)
		}
		return fmt.Errorf("postgres: migration %s: commit: %w", m.name, interpretError(err))
	}
	return nil
}
