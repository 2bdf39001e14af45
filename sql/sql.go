// Package sql embeds the database migrations so that the server binary applies them at
// start-up. The same files are the schema sqlc reads to generate the typed queries in db/.
package sql

import "embed"

// PostgresMigrations holds the numbered PostgreSQL migrations under postgres/migrations.
//
//go:embed postgres/migrations/*.sql
var PostgresMigrations embed.FS

// SQLiteMigrations holds the numbered SQLite migrations under sqlite/migrations.
//
//go:embed sqlite/migrations/*.sql
var SQLiteMigrations embed.FS
