package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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
}

// NewConfiguredCluster starts a throwaway cluster of its own for t, like the one of Main
// but with the extra files and settings of o, and returns its administrative URL
// (database "postgres", user "postgres", no password, sslmode=disable). The server is
// stopped and its directory removed when t ends.
func NewConfiguredCluster(t testing.TB, o ClusterOptions) string {
	t.Helper()
	c, err := startConfiguredCluster(o)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.stop)
	return c.url
}

func startConfiguredCluster(o ClusterOptions) (*cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vss-pgtest-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = sysProcAttr(cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := configure(data, o, func(path string) error {
		if cred == nil {
			return nil
		}
		return os.Chown(path, int(cred.Uid), int(cred.Gid))
	}); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	var errs []error
	for range 5 {
		c, err := startServer(bin, dir, cred)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
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
