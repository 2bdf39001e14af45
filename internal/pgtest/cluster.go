package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is a PostgreSQL server started for one test binary.
type cluster struct {
	dir  string        // temporary directory: data/, the socket and the log
	url  string        // administrative URL
	proc *os.Process   // the postmaster
	done chan struct{} // closed when the postmaster has exited
}

// startCluster initialises a cluster in a new temporary directory, with the extra files
// and settings of o, and starts it.
func startCluster(o ClusterOptions) (*cluster, error) {
	bin, dir, cred, err := initCluster(o)
	if err != nil {
		return nil, err
	}
	// A free port can be taken by someone else before the server binds it; try again.
	var errs []error
	for range 5 {
		c, err := startServer(bin, dir, cred, o.Durable)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	_ = os.RemoveAll(dir)
	return nil, errors.Join(errs...)
}

// initCluster runs initdb in a new temporary directory (as the unprivileged user the
// server will run as, when this process is root) and writes the files and settings of
// o into the data directory. It returns where the PostgreSQL binaries are, the
// directory, and the credential the server must run with (nil: this process's own).
func initCluster(o ClusterOptions) (bin, dir string, cred *syscall.Credential, err error) {
	if bin, err = binDir(); err != nil {
		return "", "", nil, err
	}
	if dir, err = os.MkdirTemp("", "vss-pgtest-"); err != nil {
		return "", "", nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred, err = credential(dir); err != nil {
		return "", "", nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = sysProcAttr(cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	err = configure(data, o, func(path string) error {
		if cred == nil {
			return nil
		}
		return os.Chown(path, int(cred.Uid), int(cred.Gid))
	})
	return bin, dir, cred, err
}

// startServer starts the postmaster of the cluster in dir on a free port and waits until
// it accepts connections.
func startServer(bin, dir string, cred *syscall.Credential, durable bool) (*cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startServerOn(bin, dir, cred, port, durable)
}

// startServerOn starts the postmaster of the cluster in dir on port and waits until it
// accepts connections. A durable server flushes every commit to disk before
// acknowledging it, so that commits survive the server being stopped at once.
func startServerOn(bin, dir string, cred *syscall.Credential, port int, durable bool) (*cluster, error) {
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	args := []string{
		"-D", filepath.Join(dir, "data"),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + dir,
		"-c", "max_connections=300",
	}
	if !durable {
		// Durability is worthless for a throwaway cluster.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr(cred)

	// The postmaster is this process's child (not daemonised by pg_ctl) so that it dies
	// with the test binary even when the binary crashes: sysProcAttr asks Linux for a
	// signal when the parent thread exits. That thread must live as long as the
	// server, so start and wait for it on a goroutine locked to its thread.
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	c := &cluster{
		dir:  dir,
		url:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		proc: cmd.Process,
		done: done,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("postgres exited at start-up:\n%s", out)
		default:
		}
		if err := ping(c.url); err == nil {
			return c, nil
		} else if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("postgres did not accept connections within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down at once, like pg_ctl stop -m immediate, and removes the
// cluster's directory.
func (c *cluster) stop() {
	c.halt(syscall.SIGQUIT)
	_ = os.RemoveAll(c.dir)
}

// halt sends the postmaster sig (SIGQUIT: immediate shutdown, SIGINT: fast shutdown)
// and waits until it has exited, killing it after 10 s. The data directory stays.
func (c *cluster) halt(sig syscall.Signal) {
	_ = c.proc.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.proc.Kill()
		<-c.done
	}
}

// ping reports whether the server at url accepts a connection.
func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	if dir := os.Getenv(EnvBin); dir != "" {
		return dir, nil
	}
	// Debian and Ubuntu install each major version under /usr/lib/postgresql; take the
	// newest.
	versions, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(versions, func(a, b string) int { return majorOf(b) - majorOf(a) })
	if len(versions) > 0 {
		return filepath.Dir(versions[0]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries: initdb is neither under /usr/lib/postgresql/*/bin nor in PATH")
}

// majorOf extracts the major version from /usr/lib/postgresql/<major>/bin/initdb.
func majorOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// credential returns the identity to run the server binaries with: none normally, the
// "postgres" user when running as root (which initdb and postgres refuse), in which
// case dir is handed to that user.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and %w: PostgreSQL refuses to run as root", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, err
	}
	// The server must reach dir through its parents.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("the postgres user cannot enter %s (set TMPDIR to a directory it can reach)",
				strings.TrimSuffix(p, "/"))
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
