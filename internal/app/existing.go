package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/govss/vss/storage"
	"github.com/govss/vss/storage/postgres"
)

// OpenExistingStore opens the store cfg names, as OpenConfiguredStore does, but only one
// that exists: it creates no data directory, no database file, no PostgreSQL database and
// no schema in an empty database. Administration commands use it, so that one run with
// the wrong directory or URL fails and says where it looked, instead of reporting on a
// new, empty store. The description names the store that was opened.
func OpenExistingStore(ctx context.Context, cfg Config, log *slog.Logger) (storage.Store, string, error) {
	where := StoreLocation(cfg)
	switch {
	case cfg.DatabaseURL == MemoryURL:
		return nil, "", errors.New("the in-memory store has nothing to administer: set --database-url or --data-dir")
	case cfg.DatabaseURL == "" && cfg.DataDir != "":
		_, err := os.Stat(filepath.Join(cfg.DataDir, "vss.db"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("no store at %s: it does not exist (give the server's --data-dir or --database-url, "+
				"or its --config, or run where the server runs)", where)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", where, err)
		}
	case cfg.DatabaseURL != "":
		cfg.Database.CreateFrom = "" // a missing database stays missing
	}
	store, desc, err := OpenConfiguredStore(ctx, cfg, log, postgres.WithExistingStore())
	if errors.Is(err, postgres.ErrNoStore) {
		return nil, "", fmt.Errorf("no store at %s: the database exists but holds no VSS data (no vss_db table)", where)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	return store, desc, nil
}

// StoreLocation describes where cfg's store is, without a password: the embedded store's
// file as an absolute path, or the PostgreSQL user, host and database.
func StoreLocation(cfg Config) string {
	switch {
	case cfg.DatabaseURL == MemoryURL:
		return "the in-memory store"
	case cfg.DatabaseURL == "":
		path := filepath.Join(cfg.DataDir, "vss.db")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "embedded store " + path + " (data directory " + cfg.DataDir + ")"
	}
	u, err := url.Parse(cfg.DatabaseURL)
	if err != nil || u.Host == "" {
		return "PostgreSQL database " + redact(cfg.DatabaseURL)
	}
	who := ""
	if u.User != nil {
		who = u.User.Username() + "@"
	}
	return "PostgreSQL database " + u.Scheme + "://" + who + u.Host + "/" + strings.TrimPrefix(u.Path, "/")
}
