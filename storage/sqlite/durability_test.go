package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govss/vss/storage"
)

// helperDBEnv names the database file TestHelperWriter writes to. When it is unset,
// TestHelperWriter does nothing: it only runs as the child of TestDurabilityAfterKill.
const helperDBEnv = "VSS_SQLITE_HELPER_DB"

const (
	// killAfter is how many acknowledgements the parent reads before killing the child.
	killAfter = 300
	// helperMaxOps bounds the child's work if it is never killed.
	helperMaxOps = 20000
)

// durabilityOp is the i-th write of the helper: even steps create key i/2, odd steps
// update it from version 1 to 2. Values are pseudo-random, of varying size, with an
// occasional large one, and are a function of i alone so the parent can recompute them.
func durabilityOp(i int) storage.KeyValue {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	size := 16 + r.IntN(4096)
	if i%41 == 0 {
		size = 256 << 10
	}
	value := make([]byte, size)
	for j := range value {
		value[j] = byte(r.Uint32())
	}
	return storage.KeyValue{Key: fmt.Sprintf("key-%06d", i/2), Version: int64(i % 2), Value: value}
}

// durabilityState is the content of the store after the helper's ops 0..n-1.
func durabilityState(n int) map[string]storage.KeyValue {
	state := make(map[string]storage.KeyValue)
	for i := range n {
		op := durabilityOp(i)
		op.Version++ // create stores 1, update of 1 stores 2
		state[op.Key] = op
	}
	return state
}

// TestHelperWriter is the child process of TestDurabilityAfterKill. It writes with
// sequential Puts and prints "ack <i>" on stdout once Put i returned nil.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperDBEnv)
	if path == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	for i := range helperMaxOps {
		err := s.Put(ctx, "helper", storage.PutRequest{StoreID: "s", Puts: []storage.KeyValue{durabilityOp(i)}})
		if err != nil {
			fmt.Fprintf(os.Stderr, "helper: put %d: %v\n", i, err)
			os.Exit(1)
		}
		// os.Stdout is unbuffered: once Println returns, the line is in the pipe.
		fmt.Println("ack", i)
	}
	s.Close()
}

// TestDurabilityAfterKill kills a process with SIGKILL while it writes, then checks
// that every write the process saw acknowledged is in the reopened database, with its
// exact value and version. The kill lands at an arbitrary point of a write, so the
// database may also hold the one write that was in flight, but nothing else.
func TestDurabilityAfterKill(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vss.db")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDBEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// acked counts the acknowledged ops; they arrive in order, 0 first. Lines printed
	// before the kill but read after it are acknowledged too, so read to the end.
	acked := 0
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i != acked {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("unexpected acknowledgement %q after %d", sc.Text(), acked)
		}
		acked++
		if acked == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acknowledgements without being killed: %v\n%s", acked, waitErr, stderr.String())
	}
	t.Logf("killed after %d acknowledged writes", acked)

	s := openPath(t, path)
	got := make(map[string]storage.KeyValue)
	for _, e := range listAll(t, s, "helper", "s", "", 1000) {
		v, err := s.Get(t.Context(), "helper", "s", e.Key)
		if err != nil {
			t.Fatalf("Get(%q): %v", e.Key, err)
		}
		got[e.Key] = v
	}
	// The database holds exactly the acknowledged writes, plus at most the next one.
	diffAcked := diffState(got, durabilityState(acked))
	if diffAcked == "" {
		return
	}
	if diffInFlight := diffState(got, durabilityState(acked+1)); diffInFlight != "" {
		t.Fatalf("after %d acknowledged writes the database differs: %s", acked, diffAcked)
	}
	t.Logf("the write in flight (op %d) was committed too", acked)
}

// diffState describes the first difference between the stored and the expected state,
// or returns "" if they are equal.
func diffState(got, want map[string]storage.KeyValue) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d keys stored, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			return fmt.Sprintf("%s missing", k)
		case g.Version != w.Version:
			return fmt.Sprintf("%s at version %d, want %d", k, g.Version, w.Version)
		case !bytes.Equal(g.Value, w.Value):
			return fmt.Sprintf("%s has a different value (%d bytes, want %d)", k, len(g.Value), len(w.Value))
		}
	}
	return ""
}
