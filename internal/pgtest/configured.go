package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ClusterOptions configures a cluster of NewConfiguredCluster.
type ClusterOptions struct {
	// Files are written into the data directory before the server starts, owned by the
	// user the server runs as and readable by it alone (mode 0600, as PostgreSQL demands
	// of a private key): for example server.crt and server.key.
	Files map[string][]byte
	// Settings are server settings added to postgresql.conf, for example
	// {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}.
	// Values are written as given: quote strings ('...') where PostgreSQL needs it.
	Settings map[string]string
	// Durable runs the server with fsync, synchronous_commit and full_page_writes on,
	// PostgreSQL's defaults and what production runs: every commit waits for its WAL to
	// reach the disk. Otherwise they are off, which is all a throwaway cluster needs.
	Durable bool
}

// NewConfiguredCluster starts a throwaway cluster of its own for t, like the one of Main
// but with the extra files and settings of o, and returns its administrative URL
// (database "postgres", user "postgres", no password, sslmode=disable). The server is
// stopped and its directory removed when t ends.
func NewConfiguredCluster(t testing.TB, o ClusterOptions) string {
	t.Helper()
	c, err := startCluster(o)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.stop)
	return c.url
}

// configure writes the files and settings of o into the data directory data, handing
// each file to the server's user with chown.
func configure(data string, o ClusterOptions, chown func(string) error) error {
	for name, content := range o.Files {
		if name != filepath.Base(name) || name == "." || name == ".." {
			return fmt.Errorf("file name %q: want a plain name in the data directory", name)
		}
		path := filepath.Join(data, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			return err
		}
		if err := chown(path); err != nil {
			return err
		}
	}
	if len(o.Settings) == 0 {
		return nil
	}
	var conf strings.Builder
	conf.WriteString("\n# Added by pgtest.\n")
	keys := make([]string, 0, len(o.Settings))
	for k := range o.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = %s\n", k, o.Settings[k])
	}
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf.String()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
