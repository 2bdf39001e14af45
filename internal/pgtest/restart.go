package pgtest

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"testing"
)

// Cluster is a throwaway PostgreSQL cluster of one test whose server can be stopped and
// started again on the same port with the same data, for tests of how clients live
// through a database outage. Unlike the cluster of Main it is durable (fsync and
// synchronous commit on): a commit acknowledged before Stop is there after Start, even
// after an immediate stop.
type Cluster struct {
	bin  string
	dir  string
	cred *syscall.Credential
	port int
	url  string

	mu  sync.Mutex
	srv *cluster // nil while stopped
}

// NewCluster initialises a cluster in a new temporary directory and starts its server.
// The server is stopped and the directory removed when t ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := newCluster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.close)
	return c
}

func newCluster() (*Cluster, error) {
	bin, dir, cred, err := initCluster(ClusterOptions{})
	if err != nil {
		return nil, err
	}
	// A free port can be taken by someone else before the server binds it; try again.
	var errs []error
	for range 5 {
		port, err := freePort()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srv, err := startServerOn(bin, dir, cred, port, true)
		if err == nil {
			return &Cluster{bin: bin, dir: dir, cred: cred, port: port, url: srv.url, srv: srv}, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

// URL returns the administrative URL of the cluster (database "postgres", user
// "postgres", no password). It stays the same across Stop and Start.
func (c *Cluster) URL() string { return c.url }

// Stop shuts the server down and waits until it has exited; the data stays. An
// immediate stop is a crash as far as clients see it (SIGQUIT: connections drop at once,
// recovery replays the WAL at the next start); otherwise the stop is a fast shutdown
// (SIGINT: sessions are terminated and the server checkpoints). Stop on a stopped
// cluster does nothing.
func (c *Cluster) Stop(immediate bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return
	}
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	c.srv.halt(sig)
	c.srv = nil
}

// Start starts the server again on its port and returns once it accepts connections.
// Start on a running cluster does nothing.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return nil
	}
	srv, err := startServerOn(c.bin, c.dir, c.cred, c.port, true)
	if err != nil {
		return err
	}
	c.srv = srv
	return nil
}

// close stops the server and removes the cluster's directory.
func (c *Cluster) close() {
	c.Stop(true)
	_ = os.RemoveAll(c.dir)
}
