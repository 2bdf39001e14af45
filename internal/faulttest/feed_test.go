package faulttest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/pgtest"
	"github.com/govss/vss/server"
)

// feedClient is a generated client of one server over gRPC (cleartext HTTP/2), as a
// device would hold one, writing as device.
type feedClient struct {
	c      vssv1connect.VssServiceClient
	device string
}

func newFeedClient(base, device string) feedClient {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	return feedClient{vssv1connect.NewVssServiceClient(hc, base, connect.WithGRPC()), device}
}

func withDevice[T any](device string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if device != "" {
		r.Header().Set(server.DeviceIDHeader, device)
	}
	return r
}

func (f feedClient) put(ctx context.Context, storeID, key string, version int64) error {
	_, err := f.c.PutObjects(ctx, withDevice(f.device, &vssv1.PutObjectRequest{StoreId: storeID,
		TransactionItems: []*vssv1.KeyValue{{Key: key, Version: version, Value: []byte(f.device + ":" + key)}}}))
	return err
}

// follow makes the store followed, as a device does first, and returns its cursor.
func (f feedClient) follow(ctx context.Context, t testing.TB, storeID string) string {
	t.Helper()
	resp, err := f.c.GetChangeCursor(ctx, connect.NewRequest(&vssv1.GetChangeCursorRequest{StoreId: storeID}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Msg.GetCursor()
}

func (f feedClient) del(ctx context.Context, storeID, key string) error {
	_, err := f.c.DeleteObject(ctx, withDevice(f.device, &vssv1.DeleteObjectRequest{StoreId: storeID, KeyValue: &vssv1.KeyValue{Key: key, Version: -1}}))
	return err
}

// watcher follows a store's feed through WatchChanges on one server, from a cursor.
type watcher struct {
	mu      sync.Mutex
	changes []*vssv1.Change
	// at is when each change arrived.
	at     []time.Time
	cursor string
	err    error
	done   chan struct{}
}

// watch starts following storeID from cursor on c until ctx ends or the stream fails.
func watch(ctx context.Context, c feedClient, storeID, cursor string) *watcher {
	w := &watcher{cursor: cursor, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s, err := c.c.WatchChanges(ctx, connect.NewRequest(&vssv1.WatchChangesRequest{StoreId: storeID, Cursor: cursor}))
		if err != nil {
			w.setErr(err)
			return
		}
		defer s.Close()
		for s.Receive() {
			now := time.Now()
			w.mu.Lock()
			for _, ch := range s.Msg().GetChanges() {
				w.changes = append(w.changes, ch)
				w.at = append(w.at, now)
			}
			w.cursor = s.Msg().GetCursor()
			w.mu.Unlock()
		}
		w.setErr(s.Err())
	}()
	return w
}

func (w *watcher) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// waitFor waits until the watcher has n changes, or fails t after d.
func (w *watcher) waitFor(t *testing.T, n int, d time.Duration) []*vssv1.Change {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		w.mu.Lock()
		got, err := slices.Clone(w.changes), w.err
		w.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if err != nil {
			t.Fatalf("stream ended after %d of %d changes: %v", len(got), n, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream delivered %d of %d changes within %s", len(got), n, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func describe(cs []*vssv1.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s@%d", c.GetKey(), c.GetVersion())
		if c.GetDeleted() {
			out[i] += "-"
		}
		out[i] += "/" + c.GetDeviceId()
	}
	return out
}

// TestWatchAcrossInstances runs two vss-server processes on one PostgreSQL database,
// device A on one and device B on the other: B sees A's writes and deletes live, tells
// its own apart by device id, and after a disconnect resumes from its cursor with
// exactly A's changes of the meantime, once each. Then the instance B streams from is
// killed with SIGKILL while A keeps writing, and B resumes on the other instance from
// its cursor with no gap and no duplicate.
func TestWatchAcrossInstances(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srvA := startServer(t, "--database-url", db, "--auth", "none", "--watch-heartbeat", "1s")
	srvB := startServer(t, "--database-url", db, "--auth", "none", "--watch-heartbeat", "1s")
	ctx := testContext(t, 2*time.Minute)
	a, b := newFeedClient(srvA.url(), "A"), newFeedClient(srvB.url(), "B")
	const sid = "wallet"

	w := watch(ctx, b, sid, b.follow(ctx, t, sid))
	// Live: A's writes through instance A reach B's stream on instance B.
	var latencies []time.Duration
	steps := []func() error{
		func() error { return a.put(ctx, sid, "x", 0) },
		func() error { return a.put(ctx, sid, "x", 1) },
		func() error { return b.put(ctx, sid, "mine", 0) },
		func() error { return a.del(ctx, sid, "x") },
	}
	// Then more of A's writes, one at a time, for the notification latency.
	const samples = 50
	for i := range samples {
		steps = append(steps, func() error { return a.put(ctx, sid, "lat"+strconv.Itoa(i), -1) })
	}
	for i, step := range steps {
		start := time.Now()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, i+1, 20*time.Second)
		w.mu.Lock()
		latencies = append(latencies, w.at[i].Sub(start))
		w.mu.Unlock()
	}
	got := w.waitFor(t, len(steps), 0)
	if d := describe(got[:4]); !slices.Equal(d, []string{"x@1/A", "x@2/A", "mine@1/B", "x@2-/A"}) {
		t.Fatalf("B's stream %v", d)
	}
	if len(got) != len(steps) {
		t.Fatalf("B's stream has %d changes, want %d", len(got), len(steps))
	}
	var others []string
	for _, c := range got[:4] {
		if c.GetDeviceId() != "B" {
			others = append(others, c.GetKey())
		}
	}
	if !slices.Equal(others, []string{"x", "x", "x"}) {
		t.Errorf("B's view without its own writes: %v", others)
	}
	slices.Sort(latencies)
	t.Logf("from sending a write to instance A to its change on instance B's stream, %d writes: p50 %v, p99 %v, max %v",
		len(latencies), latencies[len(latencies)/2], latencies[len(latencies)*99/100], latencies[len(latencies)-1])

	// B disconnects; A writes, updates and deletes; B resumes from its cursor.
	cursor := got[len(got)-1].GetCursor()
	for _, step := range []func() error{
		func() error { return a.put(ctx, sid, "y", 0) },
		func() error { return a.put(ctx, sid, "y", 1) },
		func() error { return a.put(ctx, sid, "z", -1) },
		func() error { return a.del(ctx, sid, "y") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	resumed := watch(ctx, b, sid, cursor)
	if d := describe(resumed.waitFor(t, 4, 20*time.Second)); !slices.Equal(d, []string{"y@1/A", "y@2/A", "z@1/A", "y@2-/A"}) {
		t.Fatalf("resumed stream %v", d)
	}

	// SIGKILL of the instance B streams from, while A writes.
	const writes = 200
	writerDone := make(chan error, 1)
	go func() {
		for i := range writes {
			if err := a.put(ctx, sid, "k"+strconv.Itoa(i), -1); err != nil {
				writerDone <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		writerDone <- nil
	}()
	resumed.waitFor(t, 4+writes/4, 30*time.Second)
	srvB.kill()
	<-resumed.done
	resumed.mu.Lock()
	before, last := slices.Clone(resumed.changes), resumed.cursor
	resumed.mu.Unlock()
	t.Logf("instance B killed after %d changes on its stream (cursor %s)", len(before), last)
	onA := watch(ctx, newFeedClient(srvA.url(), "B"), sid, last)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	after := onA.waitFor(t, 4+writes-len(before), 30*time.Second)
	all := append(before, after...)
	if len(all) != 4+writes {
		t.Fatalf("%d changes in all, want %d", len(all), 4+writes)
	}
	first, _ := strconv.Atoi(all[0].GetCursor())
	for i, c := range all {
		if c.GetCursor() != strconv.Itoa(first+i) {
			t.Fatalf("change %d has cursor %s after %s: a gap or a duplicate", i, c.GetCursor(), all[max(i-1, 0)].GetCursor())
		}
		if i >= 4 && c.GetKey() != "k"+strconv.Itoa(i-4) {
			t.Fatalf("change %d is %s, want k%d", i, c.GetKey(), i-4)
		}
	}
}

// leaseHolderEnv names the environment variable that makes the test binary a lease
// holder (see TestMain) instead of running tests: it holds the server's base URL.
const leaseHolderEnv = "VSS_FAULTTEST_LEASE_HOLDER"

// Parameters of the lease holder process.
const (
	holderStore = "wallet"
	holderLease = "node"
	holderTTL   = 2 * time.Second
)

// runLeaseHolder is device A as a process of its own: it acquires the lease, then
// writes with its token and renews, again and again, reporting each outcome on standard
// output, until a write is refused. It does not stop writing when a renewal fails: its
// writes stand for ones already in flight.
func runLeaseHolder() int {
	c := newFeedClient(os.Getenv(leaseHolderEnv), "A")
	ctx := context.Background()
	r, err := c.c.AcquireLease(ctx, connect.NewRequest(&vssv1.AcquireLeaseRequest{StoreId: holderStore, Name: holderLease, Holder: "A", Ttl: durationpb.New(holderTTL)}))
	if err != nil {
		fmt.Println("acquire failed:", err)
		return 1
	}
	token := r.Msg.GetLease().GetToken()
	fmt.Println("acquired", token)
	for i := 0; ; i++ {
		req := withDevice("A", &vssv1.PutObjectRequest{StoreId: holderStore, TransactionItems: []*vssv1.KeyValue{{Key: "a" + strconv.Itoa(i), Version: -1}}})
		req.Header().Set(server.LeaseNameHeader, holderLease)
		req.Header().Set(server.LeaseTokenHeader, strconv.FormatInt(token, 10))
		if _, err := c.c.PutObjects(ctx, req); err != nil {
			fmt.Println("write refused:", connect.CodeOf(err), err)
			return 0
		}
		fmt.Println("wrote", i)
		_, err := c.c.RenewLease(ctx, connect.NewRequest(&vssv1.RenewLeaseRequest{StoreId: holderStore, Name: holderLease, Token: token, Ttl: durationpb.New(holderTTL)}))
		fmt.Println("renewed:", err == nil)
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeaseHolderSuspended has device A, a process of its own, hold a lease and write
// under it through one instance; A is suspended with SIGSTOP past the TTL; device B
// acquires the lease through another instance and writes; A is resumed with SIGCONT and
// its next write with the old token is refused, so that no write of A follows B's.
func TestLeaseHolderSuspended(t *testing.T) {
	db := pgtest.NewDatabase(t)
	srvA := startServer(t, "--database-url", db, "--auth", "none")
	srvB := startServer(t, "--database-url", db, "--auth", "none")
	ctx := testContext(t, 2*time.Minute)
	b := newFeedClient(srvB.url(), "B")
	start := b.follow(ctx, t, holderStore)

	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), leaseHolderEnv+"="+srvA.url())
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(prefix string) string {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the holder exited before printing %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
			case <-timeout:
				t.Fatalf("the holder did not print %q", prefix)
			}
		}
	}
	expect("acquired 1")
	expect("wrote 3")

	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// B is refused until A's lease has run out, however long A is stopped.
	var token int64
	for deadline := time.Now().Add(20 * time.Second); ; {
		r, err := b.c.AcquireLease(ctx, connect.NewRequest(&vssv1.AcquireLeaseRequest{StoreId: holderStore, Name: holderLease, Holder: "B", Ttl: durationpb.New(time.Minute)}))
		if err == nil {
			token = r.Msg.GetLease().GetToken()
			break
		}
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || time.Now().After(deadline) {
			t.Fatalf("B's acquire: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if token != 2 {
		t.Fatalf("B's token %d, want 2", token)
	}
	req := withDevice("B", &vssv1.PutObjectRequest{StoreId: holderStore, TransactionItems: []*vssv1.KeyValue{{Key: "b", Version: -1}}})
	req.Header().Set(server.LeaseNameHeader, holderLease)
	req.Header().Set(server.LeaseTokenHeader, "2")
	if _, err := b.c.PutObjects(ctx, req); err != nil {
		t.Fatalf("B's write: %v", err)
	}
	if err := holder.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if l := expect("write refused:"); !strings.Contains(l, "failed_precondition") {
		t.Errorf("A's late write: %s", l)
	}
	_ = holder.Wait()

	// In the feed, nothing of A follows B's first write.
	cs, err := b.c.ListChanges(ctx, connect.NewRequest(&vssv1.ListChangesRequest{StoreId: holderStore, Cursor: start}))
	if err != nil {
		t.Fatal(err)
	}
	seenB := false
	for _, c := range cs.Msg.GetChanges() {
		seenB = seenB || c.GetDeviceId() == "B"
		if seenB && c.GetDeviceId() == "A" {
			t.Fatalf("A wrote after B took the lease: %v", describe(cs.Msg.GetChanges()))
		}
	}
	if !seenB {
		t.Fatalf("B's write is not in the feed: %v", describe(cs.Msg.GetChanges()))
	}
	t.Logf("feed: %v", describe(cs.Msg.GetChanges()))
}

// TestWatchEndsResumablyOnSIGTERM stops a server with SIGTERM while a client streams from
// it: the stream ends at once with SHUTTING_DOWN and the cursor to resume from, and the
// process exits without waiting out its shutdown timeout.
func TestWatchEndsResumablyOnSIGTERM(t *testing.T) {
	srv := startServer(t, "--data-dir", t.TempDir(), "--auth", "none", "--shutdown-timeout", "1m")
	ctx := testContext(t, time.Minute)
	c := newFeedClient(srv.url(), "A")
	cursor := c.follow(ctx, t, "s")
	if err := c.put(ctx, "s", "k", 0); err != nil {
		t.Fatal(err)
	}
	w := watch(ctx, c, "s", cursor)
	w.waitFor(t, 1, 20*time.Second)
	srv.mu.Lock()
	cmd, done := srv.cmd, srv.done
	srv.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end after SIGTERM")
	}
	var ce *connect.Error
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("stream ended with %v, want unavailable", err)
	}
	var fe *vssv1.FeedError
	for _, d := range ce.Details() {
		if m, derr := d.Value(); derr == nil {
			if f, ok := m.(*vssv1.FeedError); ok {
				fe = f
			}
		}
	}
	if fe.GetReason() != vssv1.FeedErrorReason_FEED_ERROR_REASON_SHUTTING_DOWN || fe.GetResumeCursor() != "1" {
		t.Fatalf("FeedError %v, want SHUTTING_DOWN with resume cursor 1", fe)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("vss-server did not exit after SIGTERM: the stream held the shutdown up")
	}
}
