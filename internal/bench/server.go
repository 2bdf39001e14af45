package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/govss/vss/internal/app"
	"github.com/govss/vss/server"
)

// child is a vss-server the benchmark started: a child process, or (for profiling) a
// server running inside the benchmark's own process.
type child struct {
	cmd    *exec.Cmd // nil in process
	root   string    // http://127.0.0.1:port
	done   chan struct{}
	cancel context.CancelFunc // in process: stops the server
}

// startInProcess runs the server of cmd/vss-server (internal/app) inside this process, so
// that a CPU profile of the process shows its hot paths. Its CPU and memory cannot be
// told apart from the load generator's.
func startInProcess(ctx context.Context, databaseURL, dataDir string, logw io.Writer) (*child, error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan net.Addr, 1)
	c := &child{done: make(chan struct{}), cancel: cancel}
	cfg := app.Config{
		Listen: "127.0.0.1:0", DatabaseURL: databaseURL, DataDir: dataDir,
		Auth:         app.AuthConfig{Schemes: "signature"},
		MaxBodyBytes: server.DefaultMaxBodyBytes, ShutdownTimeout: 10 * time.Second,
		Limits: app.LimitsConfig{MaxConnectionsPerAddress: -1}, // all load comes from 127.0.0.1
		Ready:  func(a net.Addr) { ready <- a },
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	errc := make(chan error, 1)
	go func() { errc <- app.Run(ctx, cfg, log); close(c.done) }()
	select {
	case a := <-ready:
		c.root = "http://" + a.String()
		return c, nil
	case err := <-errc:
		cancel()
		return nil, fmt.Errorf("in-process server: %w", err)
	}
}

// startServer starts bin as a child process on a free loopback port with signature
// authentication and extra, on databaseURL (PostgreSQL) or the embedded store in
// dataDir, and waits until it is ready.
func startServer(ctx context.Context, bin string, extra []string, databaseURL, dataDir string, logw io.Writer) (*child, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	// Every wallet and the idle connections of the memory probe come from 127.0.0.1.
	args := []string{"--listen", addr, "--auth", "signature", "--log-level", "warn", "--max-connections-per-address", "-1"}
	if databaseURL != "" {
		args = append(args, "--database-url", databaseURL)
	} else {
		args = append(args, "--data-dir", dataDir)
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logw, logw
	// The server dies with the benchmark, even if the benchmark is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (build it with make build)", bin, err)
	}
	c := &child{cmd: cmd, root: "http://" + addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited at start-up", bin)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get(c.root + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s not ready within 30s", bin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pid is the server's process, 0 when it runs in this process.
func (c *child) pid() int {
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// stop asks the server to shut down and kills it if it does not within 10 s.
func (c *child) stop() {
	if c.cmd == nil {
		c.cancel()
		<-c.done
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
