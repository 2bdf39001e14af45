package conformance_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/internal/conformance"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// feedServer is a server with its change feed, on a loopback port.
type feedServer struct {
	base  string
	store storage.Store
	feed  *server.Feed
	srv   *http.Server
}

// serveFeed starts a server for store whose feed has opts; store is closed with it.
func serveFeed(t testing.TB, store storage.Store, opts server.FeedOptions) *feedServer {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	feed := server.NewFeed(store.(storage.Feed), opts, log)
	h, err := server.New(server.Options{Store: store, Authorizer: testAuth, Logger: log, Feed: feed})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(feed.Shutdown)
	go func() { _ = srv.Serve(ln) }()
	fs := &feedServer{base: "http://" + ln.Addr().String(), store: store, feed: feed, srv: srv}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		feed.Close()
		_ = store.Close()
	})
	return fs
}

// feedProtocols are the Connect protocols the feed and lease tests run through.
var feedProtocols = []struct {
	name string
	new  func(base string) vssv1connect.VssServiceClient
}{
	{"connect-proto", func(b string) vssv1connect.VssServiceClient {
		return vssv1connect.NewVssServiceClient(http.DefaultClient, b)
	}},
	{"grpc", func(b string) vssv1connect.VssServiceClient {
		return vssv1connect.NewVssServiceClient(conformance.H2CClient(), b, connect.WithGRPC())
	}},
	{"grpc-web", func(b string) vssv1connect.VssServiceClient {
		return vssv1connect.NewVssServiceClient(http.DefaultClient, b, connect.WithGRPCWeb())
	}},
}

// req makes a request of user, written by device when not empty.
func req[T any](user, device string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set(conformance.UserHeader, user)
	if device != "" {
		r.Header().Set(server.DeviceIDHeader, device)
	}
	return r
}

func kv(key string, version int64, value string) *vssv1.KeyValue {
	return &vssv1.KeyValue{Key: key, Version: version, Value: []byte(value)}
}

// listChanges reads a store's whole feed after cursor through ListChanges, page by
// page, and returns the changes and the final cursor.
// follow makes the store followed, as a device does first (GetChangeCursor), so that its
// changes are recorded from then on, and returns its cursor.
func follow(t testing.TB, c vssv1connect.VssServiceClient, user, storeID string) string {
	t.Helper()
	resp, err := c.GetChangeCursor(context.Background(), req(user, "", &vssv1.GetChangeCursorRequest{StoreId: storeID}))
	if err != nil {
		t.Fatalf("GetChangeCursor(%s): %v", storeID, err)
	}
	return resp.Msg.GetCursor()
}

func listChanges(t testing.TB, c vssv1connect.VssServiceClient, user, storeID, cursor string, pageSize int32, values bool) ([]*vssv1.Change, string) {
	t.Helper()
	var all []*vssv1.Change
	for {
		resp, err := c.ListChanges(context.Background(), req(user, "", &vssv1.ListChangesRequest{StoreId: storeID, Cursor: cursor, PageSize: pageSize, IncludeValues: values}))
		if err != nil {
			t.Fatalf("ListChanges after %q: %v", cursor, err)
		}
		all = append(all, resp.Msg.GetChanges()...)
		if resp.Msg.GetNextCursor() == "" {
			t.Fatal("ListChanges returned an empty next_cursor")
		}
		cursor = resp.Msg.GetNextCursor()
		if !resp.Msg.GetHasMore() {
			return all, cursor
		}
		if len(resp.Msg.GetChanges()) == 0 {
			t.Fatal("ListChanges: has_more with an empty page")
		}
	}
}

// describe renders changes as "key@version[-][/device]" for comparisons.
func describe(cs []*vssv1.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		s := c.GetKey() + "@" + strconv.FormatInt(c.GetVersion(), 10)
		if c.GetDeleted() {
			s += "-"
		}
		if c.GetDeviceId() != "" {
			s += "/" + c.GetDeviceId()
		}
		out[i] = s
	}
	return out
}

// sameWrites reports whether got is the changes of writes, one write after another,
// each write's changes in any order.
func sameWrites(got []string, writes [][]string) bool {
	for _, w := range writes {
		if len(got) < len(w) {
			return false
		}
		a, b := slices.Clone(got[:len(w)]), slices.Clone(w)
		slices.Sort(a)
		slices.Sort(b)
		if !equal(a, b) {
			return false
		}
		got = got[len(w):]
	}
	return len(got) == 0
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// feedError returns the Connect code and the FeedError detail of err.
func feedError(t testing.TB, err error) (connect.Code, *vssv1.FeedError) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a Connect error: %v", err)
	}
	for _, d := range ce.Details() {
		if m, derr := d.Value(); derr == nil {
			if fe, ok := m.(*vssv1.FeedError); ok {
				return ce.Code(), fe
			}
		}
	}
	return ce.Code(), nil
}

// wantFeedError fails t unless err is code with the FeedError reason.
func wantFeedError(t testing.TB, err error, code connect.Code, reason vssv1.FeedErrorReason) *vssv1.FeedError {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want %s (%s)", code, reason)
	}
	got, fe := feedError(t, err)
	if got != code || fe.GetReason() != reason {
		t.Fatalf("got %v (detail %v), want %s with reason %s", err, fe, code, reason)
	}
	return fe
}

// TestChangeFeed checks the feed on every store through every Connect protocol:
// creates, updates, deletes (through PutObjects and DeleteObject), the global version,
// device ids, writes through the VSS HTTP API, values, paging and resuming.
func TestChangeFeed(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			legacy := &conformance.LegacyClient{BaseURL: fs.base + "/vss", HTTP: http.DefaultClient, Creds: conformance.TestUser}
			for _, p := range feedProtocols {
				t.Run(p.name, func(t *testing.T) {
					c := p.new(fs.base)
					ctx := context.Background()
					user, store := "feed-"+p.name, "wallet"
					start, err := c.GetChangeCursor(ctx, req(user, "", &vssv1.GetChangeCursorRequest{StoreId: store}))
					if err != nil {
						t.Fatal(err)
					}
					if start.Msg.GetCursor() != "0" {
						t.Errorf("cursor of an empty store = %q, want 0", start.Msg.GetCursor())
					}
					steps := []func() error{
						func() error { // two creates and the global version
							_, err := c.PutObjects(ctx, req(user, "phone", &vssv1.PutObjectRequest{StoreId: store, GlobalVersion: new(int64),
								TransactionItems: []*vssv1.KeyValue{kv("b", 0, "b1"), kv("a", 0, "a1")}}))
							return err
						},
						func() error { // an update through the VSS HTTP API (no device)
							_, err := legacy.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("a", 1, "a2")}})
							return err
						},
						func() error { // a delete item and an unconditional put
							_, err := c.PutObjects(ctx, req(user, "laptop", &vssv1.PutObjectRequest{StoreId: store,
								TransactionItems: []*vssv1.KeyValue{kv("c", -1, "c1")}, DeleteItems: []*vssv1.KeyValue{kv("b", 1, "")}}))
							return err
						},
						func() error { // DeleteObject through Connect
							_, err := c.DeleteObject(ctx, req(user, "phone", &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: kv("c", -1, "")}))
							return err
						},
						func() error { // a DeleteObject of a missing key changes nothing
							_, err := c.DeleteObject(ctx, req(user, "phone", &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: kv("zz", -1, "")}))
							return err
						},
						func() error { // a conflict changes nothing
							_, err := c.PutObjects(ctx, req(user, "phone", &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("a", 7, "x")}}))
							if err == nil {
								return errors.New("a conflicting put succeeded")
							}
							return nil
						},
						func() error { // a delete through the VSS HTTP API
							_, err := legacy.DeleteObject(ctx, user, &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: kv("a", 2, "")})
							return err
						},
					}
					for i, step := range steps {
						if err := step(); err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
					}
					// The changes of one write are consecutive, in an order of the store's.
					writes := [][]string{{"a@1/phone", "b@1/phone", "global_version@1/phone"}, {"a@2"}, {"b@1-/laptop", "c@1/laptop"}, {"c@1-/phone"}, {"a@2-"}}
					var want []string
					for size := range []int32{0, 1, 3} {
						got, last := listChanges(t, c, user, store, "", []int32{0, 1, 3}[size], false)
						if !sameWrites(describe(got), writes) {
							t.Fatalf("page size %d: feed %v, want %v", size, describe(got), writes)
						}
						want = describe(got)
						for i, ch := range got {
							if ch.GetCursor() != strconv.Itoa(i+1) {
								t.Errorf("change %d has cursor %q", i, ch.GetCursor())
							}
						}
						if last != got[len(got)-1].GetCursor() {
							t.Errorf("final cursor %q, want the last change's %q", last, got[len(got)-1].GetCursor())
						}
					}
					// Resuming from any cursor yields exactly the changes after it.
					all, _ := listChanges(t, c, user, store, "", 0, false)
					for i := range all {
						rest, _ := listChanges(t, c, user, store, all[i].GetCursor(), 2, false)
						if !equal(describe(rest), want[i+1:]) {
							t.Errorf("after change %d: %v, want %v", i+1, describe(rest), want[i+1:])
						}
					}
					head, err := c.GetChangeCursor(ctx, req(user, "", &vssv1.GetChangeCursorRequest{StoreId: store}))
					if err != nil || head.Msg.GetCursor() != strconv.Itoa(len(want)) {
						t.Errorf("GetChangeCursor = %v, %v; want %d", head, err, len(want))
					}
					// Values: only the key's current version carries one.
					if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("v", 0, "one")}})); err != nil {
						t.Fatal(err)
					}
					if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("w", 0, "")}})); err != nil {
						t.Fatal(err)
					}
					if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("v", 1, "two")}})); err != nil {
						t.Fatal(err)
					}
					vals, _ := listChanges(t, c, user, store, head.Msg.GetCursor(), 0, true)
					if got := describe(vals); !equal(got, []string{"v@1", "w@1", "v@2"}) {
						t.Fatalf("feed %v", got)
					}
					if vals[0].Value != nil || vals[1].Value == nil || len(vals[1].Value) != 0 || string(vals[2].Value) != "two" {
						t.Errorf("values %q %q %q: want absent, empty, two", vals[0].Value, vals[1].Value, vals[2].Value)
					}
					noVals, _ := listChanges(t, c, user, store, head.Msg.GetCursor(), 0, false)
					for _, ch := range noVals {
						if ch.Value != nil {
							t.Errorf("value sent without include_values: %v", ch)
						}
					}
					// Another user's store of the same id has its own feed.
					other, _ := listChanges(t, c, user+"-other", store, "", 0, false)
					if len(other) != 0 {
						t.Errorf("another user sees %v", describe(other))
					}
				})
			}
		})
	}
}

// TestChangeFeedCursors checks the cursor rules: a cursor older than the retained
// changes is CURSOR_EXPIRED, one beyond the head CURSOR_UNKNOWN, a malformed one
// invalid; after pruning, the head cursor still works.
func TestChangeFeedCursors(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			c := feedProtocols[0].new(fs.base)
			ctx := context.Background()
			user, store := "cursors", "s"
			follow(t, c, user, store)
			for i := range 3 {
				if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: store, TransactionItems: []*vssv1.KeyValue{kv("k"+strconv.Itoa(i), 0, "v")}})); err != nil {
					t.Fatal(err)
				}
			}
			_, err := c.ListChanges(ctx, req(user, "", &vssv1.ListChangesRequest{StoreId: store, Cursor: "4"}))
			wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_UNKNOWN)
			for _, bad := range []string{"x", "-1", "01", "+2"} {
				_, err := c.ListChanges(ctx, req(user, "", &vssv1.ListChangesRequest{StoreId: store, Cursor: bad}))
				if code, _ := feedError(t, err); code != connect.CodeInvalidArgument {
					t.Errorf("cursor %q: %v, want invalid_argument", bad, err)
				}
			}
			time.Sleep(5 * time.Millisecond) // the embedded store's clock counts milliseconds
			n, err := fs.store.(storage.Feed).PruneChanges(ctx, 0)
			if err != nil || n != 3 {
				t.Fatalf("PruneChanges = %d, %v; want 3", n, err)
			}
			for _, cur := range []string{"", "0", "2"} {
				_, err := c.ListChanges(ctx, req(user, "", &vssv1.ListChangesRequest{StoreId: store, Cursor: cur}))
				fe := wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED)
				_ = fe
				stream, err := c.WatchChanges(ctx, req(user, "", &vssv1.WatchChangesRequest{StoreId: store, Cursor: cur}))
				if err != nil {
					t.Fatal(err)
				}
				if stream.Receive() {
					t.Fatalf("stream from an expired cursor sent %v", stream.Msg())
				}
				wantFeedError(t, stream.Err(), connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED)
				_ = stream.Close()
			}
			head, err := c.GetChangeCursor(ctx, req(user, "", &vssv1.GetChangeCursorRequest{StoreId: store}))
			if err != nil || head.Msg.GetCursor() != "3" {
				t.Fatalf("GetChangeCursor after pruning: %v, %v; want 3", head, err)
			}
			got, last := listChanges(t, c, user, store, "3", 0, false)
			if len(got) != 0 || last != "3" {
				t.Errorf("from the head after pruning: %v, %q", describe(got), last)
			}
			if _, err := c.DeleteObject(ctx, req(user, "d", &vssv1.DeleteObjectRequest{StoreId: store, KeyValue: kv("k1", -1, "")})); err != nil {
				t.Fatal(err)
			}
			got, _ = listChanges(t, c, user, store, "3", 0, false)
			if !equal(describe(got), []string{"k1@1-/d"}) {
				t.Errorf("after pruning: %v", describe(got))
			}
			// Pruning keeps what is younger than the retention.
			if n, err := fs.store.(storage.Feed).PruneChanges(ctx, time.Hour); err != nil || n != 0 {
				t.Errorf("PruneChanges(1h) = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestChangeFeedConcurrentWriters has many writers race on a few keys of one store,
// through Connect and the VSS HTTP API (so through the group commit), while a stream
// follows the feed. The feed must hold every acknowledged write exactly once, numbered
// without gaps, consistent with each key's versions, and the stream must see exactly
// what ListChanges lists afterwards.
func TestChangeFeedConcurrentWriters(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			store := st.open(t)
			fs := serveFeed(t, store, server.FeedOptions{})
			c := vssv1connect.NewVssServiceClient(conformance.H2CClient(), fs.base, connect.WithGRPC())
			legacy := &conformance.LegacyClient{BaseURL: fs.base + "/vss", HTTP: http.DefaultClient, Creds: conformance.TestUser}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			user, sid := "racer", "store"

			// The watcher.
			var seenMu sync.Mutex
			var seen []*vssv1.Change
			stream, err := c.WatchChanges(ctx, req(user, "", &vssv1.WatchChangesRequest{StoreId: sid}))
			if err != nil {
				t.Fatal(err)
			}
			if !stream.Receive() {
				t.Fatalf("stream: %v", stream.Err())
			}
			go func() {
				for stream.Receive() {
					seenMu.Lock()
					seen = append(seen, stream.Msg().GetChanges()...)
					seenMu.Unlock()
				}
			}()

			const writers, writes = 8, 40
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					device := "dev" + strconv.Itoa(w)
					for i := range writes {
						key := "k" + strconv.Itoa((w+i)%5)
						var err error
						switch i % 4 {
						case 0, 1:
							_, err = c.PutObjects(ctx, req(user, device, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(key, -1, device)}}))
						case 2:
							_, err = legacy.PutObjects(ctx, user, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(key+"x", -1, "l"), kv(key, -1, "l")}})
						case 3:
							_, err = c.DeleteObject(ctx, req(user, device, &vssv1.DeleteObjectRequest{StoreId: sid, KeyValue: kv(key, -1, "")}))
						}
						if err != nil {
							t.Errorf("write: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			all, last := listChanges(t, c, user, sid, "", 7, false)
			for i, ch := range all {
				if ch.GetCursor() != strconv.Itoa(i+1) {
					t.Fatalf("change %d has cursor %s: the feed has a gap or a duplicate", i+1, ch.GetCursor())
				}
			}
			// Every put wrote a change; every delete wrote one unless the key was gone.
			var puts, legacyPuts, deletes int
			for _, ch := range all {
				switch {
				case ch.GetDeleted():
					deletes++
				case ch.GetDeviceId() == "":
					legacyPuts++
				default:
					puts++
				}
			}
			if want := writers * writes / 2; puts != want {
				t.Errorf("%d puts with a device in the feed, want %d", puts, want)
			}
			if want := 2 * writers * writes / 4; legacyPuts != want {
				t.Errorf("%d puts without a device in the feed, want %d", legacyPuts, want)
			}
			if deletes > writers*writes/4 {
				t.Errorf("%d deletes in the feed, more than were made", deletes)
			}
			// Replaying the feed gives the final state of every key.
			state := map[string]bool{}
			for _, ch := range all {
				state[ch.GetKey()] = !ch.GetDeleted()
			}
			for key, exists := range state {
				_, err := c.GetObject(ctx, req(user, "", &vssv1.GetObjectRequest{StoreId: sid, Key: key}))
				if (err == nil) != exists {
					t.Errorf("key %s: feed says exists=%v, GetObject: %v", key, exists, err)
				}
			}
			// The stream delivers the same feed.
			deadline := time.Now().Add(30 * time.Second)
			for {
				seenMu.Lock()
				n := len(seen)
				seenMu.Unlock()
				if n >= len(all) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			seenMu.Lock()
			got := describe(seen)
			seenMu.Unlock()
			if !equal(got, describe(all)) {
				t.Errorf("stream saw %d changes, the feed lists %d (up to %s)", len(got), len(all), last)
			}
		})
	}
}

// TestWatchChanges checks a stream: it catches up, then delivers live changes in order
// with their devices, sends keep-alives while idle, resumes exactly from any cursor,
// and ends with SHUTTING_DOWN and its cursor when the server stops.
func TestWatchChanges(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{Heartbeat: 200 * time.Millisecond})
			for _, p := range feedProtocols {
				t.Run(p.name, func(t *testing.T) {
					c := p.new(fs.base)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					user, sid := "watch-"+p.name, "s"
					write := func(device, key string) {
						t.Helper()
						if _, err := c.PutObjects(ctx, req(user, device, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(key, -1, key)}})); err != nil {
							t.Fatal(err)
						}
					}
					follow(t, c, user, sid)
					write("a", "before")
					stream, err := c.WatchChanges(ctx, req(user, "", &vssv1.WatchChangesRequest{StoreId: sid, IncludeValues: true}))
					if err != nil {
						t.Fatal(err)
					}
					defer stream.Close()
					var got []*vssv1.Change
					keepAlives := 0
					next := func() *vssv1.WatchChangesResponse {
						t.Helper()
						if !stream.Receive() {
							t.Fatalf("stream ended: %v", stream.Err())
						}
						m := stream.Msg()
						if len(m.GetChanges()) == 0 {
							keepAlives++
						} else if m.GetCursor() != m.GetChanges()[len(m.GetChanges())-1].GetCursor() {
							t.Errorf("message cursor %s, last change %s", m.GetCursor(), m.GetChanges()[len(m.GetChanges())-1].GetCursor())
						}
						got = append(got, m.GetChanges()...)
						return m
					}
					for len(got) < 1 {
						next()
					}
					write("b", "live1")
					write("a", "live2")
					for len(got) < 3 {
						next()
					}
					if d := describe(got); !equal(d, []string{"before@1/a", "live1@1/b", "live2@1/a"}) {
						t.Fatalf("stream %v", d)
					}
					if string(got[2].GetValue()) != "live2" {
						t.Errorf("value %q", got[2].GetValue())
					}
					for keepAlives < 2 {
						m := next()
						if len(m.GetChanges()) == 0 && m.GetCursor() != "3" {
							t.Errorf("keep-alive with cursor %s, want 3", m.GetCursor())
						}
					}
					// Resume from the middle.
					again, err := c.WatchChanges(ctx, req(user, "", &vssv1.WatchChangesRequest{StoreId: sid, Cursor: got[0].GetCursor()}))
					if err != nil {
						t.Fatal(err)
					}
					var resumed []*vssv1.Change
					for len(resumed) < 2 && again.Receive() {
						resumed = append(resumed, again.Msg().GetChanges()...)
					}
					if d := describe(resumed); !equal(d, []string{"live1@1/b", "live2@1/a"}) {
						t.Errorf("resumed stream %v", d)
					}
					_ = again.Close()
				})
			}
		})
	}
}

// openStream opens a WatchChanges stream of user's store and waits for its first
// message.
func openStream(t *testing.T, ctx context.Context, c vssv1connect.VssServiceClient, user, sid, cursor string, values bool) (*connect.ServerStreamForClient[vssv1.WatchChangesResponse], error) {
	t.Helper()
	s, err := c.WatchChanges(ctx, req(user, "", &vssv1.WatchChangesRequest{StoreId: sid, Cursor: cursor, IncludeValues: values}))
	if err != nil {
		return nil, err
	}
	if !s.Receive() {
		err := s.Err()
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// TestWatchStreamLimit checks the cap on one user's open streams.
func TestWatchStreamLimit(t *testing.T) {
	fs := serveFeed(t, stores[2].open(t), server.FeedOptions{MaxStreamsPerUser: 2})
	c := feedProtocols[1].new(fs.base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := openStream(t, ctx, c, "u", "a", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStream(t, ctx, c, "u", "b", "", false); err != nil {
		t.Fatal(err)
	}
	_, err = openStream(t, ctx, c, "u", "c", "", false)
	wantFeedError(t, err, connect.CodeResourceExhausted, vssv1.FeedErrorReason_FEED_ERROR_REASON_STREAM_LIMIT)
	if _, err := openStream(t, ctx, c, "someone-else", "a", "", false); err != nil {
		t.Fatalf("another user's stream: %v", err)
	}
	_ = first.Close()
	for {
		s, err := openStream(t, ctx, c, "u", "c", "", false)
		if err == nil {
			_ = s.Close()
			break
		}
		if code, _ := feedError(t, err); code != connect.CodeResourceExhausted || ctx.Err() != nil {
			t.Fatalf("after closing a stream: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchSlowConsumer has a client stop reading its stream while large values are
// written. The server keeps at most one page of the stream in memory, cuts the stream
// once a message cannot be written within the send timeout, and the client resumes from
// the last cursor it received and gets every change exactly once.
func TestWatchSlowConsumer(t *testing.T) {
	for _, st := range stores[:2] {
		t.Run(st.name, func(t *testing.T) {
			fs := serveFeed(t, st.open(t), server.FeedOptions{SendTimeout: 500 * time.Millisecond})
			c := feedProtocols[1].new(fs.base) // gRPC: HTTP/2 flow control stops the server's writes
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			user, sid := "slow", "s"
			stream, err := openStream(t, ctx, c, user, sid, "", true)
			if err != nil {
				t.Fatal(err)
			}
			const n, size = 48, 1 << 20 // 48 MiB of values
			value := make([]byte, size)
			for i := range n {
				value[0] = byte(i)
				if _, err := c.PutObjects(ctx, req(user, "w", &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{{Key: "k" + strconv.Itoa(i), Version: -1, Value: value}}})); err != nil {
					t.Fatal(err)
				}
			}
			// The stream is stuck behind the unread messages; what the server holds is one
			// page and the transport's windows, not the 48 MiB written.
			time.Sleep(time.Second)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("heap while the stream is stuck: %d MiB", ms.HeapAlloc>>20)
			if ms.HeapAlloc > 40<<20 {
				t.Errorf("heap holds %d MiB while the stream is stuck: the stream buffers what it cannot send", ms.HeapAlloc>>20)
			}
			// Now read: the stream ends (cut) before delivering everything, and the
			// client resumes from its last cursor.
			var got []*vssv1.Change
			cursor := ""
			for stream.Receive() {
				got = append(got, stream.Msg().GetChanges()...)
				cursor = stream.Msg().GetCursor()
			}
			if stream.Err() == nil {
				t.Fatal("the stuck stream was not cut")
			}
			t.Logf("stream cut after %d changes: %v", len(got), stream.Err())
			rest, _ := listChanges(t, c, user, sid, cursor, 0, false)
			got = append(got, rest...)
			if len(got) != n {
				t.Fatalf("%d changes after resuming, want %d", len(got), n)
			}
			for i, ch := range got {
				if ch.GetCursor() != strconv.Itoa(i+1) {
					t.Fatalf("change %d has cursor %s: a gap or a duplicate", i+1, ch.GetCursor())
				}
			}
		})
	}
}

// TestWatchShutdown checks that a server shutting down ends its streams at once with
// SHUTTING_DOWN and the cursor to resume from.
func TestWatchShutdown(t *testing.T) {
	fs := serveFeed(t, stores[2].open(t), server.FeedOptions{})
	c := feedProtocols[0].new(fs.base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	follow(t, c, "u", "s")
	if _, err := c.PutObjects(ctx, req("u", "d", &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}})); err != nil {
		t.Fatal(err)
	}
	stream, err := openStream(t, ctx, c, "u", "s", "", false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fs.srv.Shutdown(ctx) }()
	for stream.Receive() {
	}
	fe := wantFeedError(t, stream.Err(), connect.CodeUnavailable, vssv1.FeedErrorReason_FEED_ERROR_REASON_SHUTTING_DOWN)
	if fe.GetResumeCursor() != "1" {
		t.Errorf("resume cursor %q, want 1", fe.GetResumeCursor())
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v (the stream held it up)", err)
	}
}

// TestFeedStartsWhenFollowed checks that a store's changes are recorded from the first
// time a device follows it: the writes before are not in the feed, whose start (cursor
// 1 for a store that held keys) tells a reader with nothing to list the store, and the
// writes after are all there.
func TestFeedStartsWhenFollowed(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			c := feedProtocols[0].new(fs.base)
			ctx := context.Background()
			user, sid := "late", "s"
			for _, k := range []string{"a", "b"} {
				if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(k, 0, k)}})); err != nil {
					t.Fatal(err)
				}
			}
			if cur := follow(t, c, user, sid); cur != "1" {
				t.Fatalf("first cursor of a store with keys = %q, want 1", cur)
			}
			_, err := c.ListChanges(ctx, req(user, "", &vssv1.ListChangesRequest{StoreId: sid}))
			wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED)
			if _, err := c.PutObjects(ctx, req(user, "d", &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("a", 1, "a2")}})); err != nil {
				t.Fatal(err)
			}
			if got, last := listChanges(t, c, user, sid, "1", 0, false); !equal(describe(got), []string{"a@2/d"}) || last != "2" {
				t.Errorf("changes after following: %v, %q", describe(got), last)
			}
			if cur := follow(t, c, user, sid); cur != "2" {
				t.Errorf("cursor = %q, want 2", cur)
			}
		})
	}
}

// TestFollowRacesWrites follows stores while writers update their keys as fast as they
// can, and then does what a new device does: take the cursor, list the store, follow
// the feed from the cursor. The list and the changes must add up to the store's final
// state, and each key's changes must be consecutive versions up to its last: no write
// that committed after the follow may be missing from the feed.
func TestFollowRacesWrites(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			c := feedProtocols[1].new(fs.base)
			ctx := context.Background()
			user := "racing"
			const stores, writers = 6, 4
			for s := range stores {
				sid := "s" + strconv.Itoa(s)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						key := "k" + strconv.Itoa(w)
						for v := int64(0); ; v++ {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := c.PutObjects(ctx, req(user, "", &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(key, v, "x")}})); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				time.Sleep(time.Duration(5+10*s) * time.Millisecond)
				cursor := follow(t, c, user, sid)
				listed := listVersions(t, c, user, sid)
				time.Sleep(30 * time.Millisecond)
				close(stop)
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}
				final := listVersions(t, c, user, sid)
				changes, _ := listChanges(t, c, user, sid, cursor, 0, false)
				seen := map[string][]int64{}
				for _, ch := range changes {
					seen[ch.GetKey()] = append(seen[ch.GetKey()], ch.GetVersion())
				}
				for key, want := range final {
					vs := seen[key]
					for i := 1; i < len(vs); i++ {
						if vs[i] != vs[i-1]+1 {
							t.Fatalf("%s/%s: versions in the feed %v skip one", sid, key, vs)
						}
					}
					got := listed[key]
					if len(vs) > 0 {
						if vs[0] > got+1 {
							t.Fatalf("%s/%s: listed at %d, feed starts at %d: a write is missing", sid, key, got, vs[0])
						}
						got = max(got, vs[len(vs)-1])
					}
					if got != want {
						t.Fatalf("%s/%s: list and feed give version %d, the store holds %d (feed %v)", sid, key, got, want, vs)
					}
				}
			}
		})
	}
}

// listVersions lists every key of a store with its version.
func listVersions(t testing.TB, c vssv1connect.VssServiceClient, user, storeID string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	token := ""
	for {
		resp, err := c.ListKeyVersions(context.Background(), req(user, "", &vssv1.ListKeyVersionsRequest{StoreId: storeID, PageToken: &token}))
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Msg.GetKeyVersions() {
			out[kv.GetKey()] = kv.GetVersion()
		}
		token = resp.Msg.GetNextPageToken()
		if len(resp.Msg.GetKeyVersions()) == 0 || token == "" {
			return out
		}
	}
}
