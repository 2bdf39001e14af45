package faulttest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govss/vss/internal/pgtest"
)

// serverBin is the vss-server binary TestMain builds for the package's tests.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if os.Getenv(leaseHolderEnv) != "" {
		return runLeaseHolder() // a child process of TestLeaseHolderSuspended
	}
	dir, err := os.MkdirTemp("", "vss-faulttest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	serverBin = filepath.Join(dir, "vss-server")
	build := exec.Command("go", "build", "-o", serverBin, "github.com/govss/vss/cmd/vss-server")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build vss-server: %v\n%s", err, out)
		return 1
	}
	return pgtest.Run(m)
}

// serverProc is a vss-server child process that a test can kill and start again on the
// same address with the same arguments.
type serverProc struct {
	t    testing.TB
	addr string
	args []string
	log  string // the file collecting the server's output across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

// startServer starts vss-server on a free loopback port with args (besides --listen)
// and waits until it answers /healthz. The process is stopped when t ends.
func startServer(t testing.TB, args ...string) *serverProc {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := &serverProc{t: t, addr: "127.0.0.1:" + strconv.Itoa(port), args: args,
		log: filepath.Join(t.TempDir(), "vss-server.log")}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			if out, err := os.ReadFile(s.log); err == nil {
				t.Logf("vss-server output (%s):\n%s", s.addr, tail(out, 8000))
			}
		}
	})
	s.start()
	return s
}

// url is the server's base URL.
func (s *serverProc) url() string { return "http://" + s.addr }

// start starts the process and waits until it is ready.
func (s *serverProc) start() {
	s.t.Helper()
	s.startWith(&http.Client{Timeout: time.Second}, s.url())
}

// startWith starts the process and waits until hc gets 200 from base+"/healthz".
func (s *serverProc) startWith(hc *http.Client, base string) {
	s.t.Helper()
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(serverBin, append([]string{"--listen", s.addr}, s.args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Linux kills the server when the thread that started it ends (so that it dies with
	// a crashed test binary). Go ends threads, such as one that ran a goroutine locked
	// to it, so the server is started on a thread of its own that lives until it exits.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
		s.t.Fatalf("start vss-server: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(s.log)
			s.t.Fatalf("vss-server exited at start-up: %v\n%s", cmd.ProcessState, tail(out, 4000))
		default:
		}
		if res, err := hc.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("vss-server did not answer /healthz within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to the running process, if any, and waits until it is gone.
func (s *serverProc) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// alive reports whether the process is running.
func (s *serverProc) alive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// testContext returns a context that ends with t or after d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
