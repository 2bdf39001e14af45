package vssclient_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	vssclient "github.com/govss/vss/client"
	"github.com/govss/vss/client/vsstest"
	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
)

// device returns a client of user's wallet on the named device.
func device(srv *vsstest.Server, user, name string, opts ...vssclient.Option) *vssclient.Client {
	seed := sha256.Sum256([]byte(user))
	opts = append([]vssclient.Option{
		vssclient.WithHeaders(vssclient.Signature(secp256k1.PrivKeyFromBytes(seed[:]))),
		vssclient.WithDeviceID(name),
		vssclient.WithRetry(vssclient.RetryPolicy{MaxBackoff: 50 * time.Millisecond}),
	}, opts...)
	return vssclient.New(srv.URL, opts...)
}

// TestWatch follows a store from a second device over each protocol while the first
// writes, updates and deletes and the server cuts every connection several times: the
// watcher gets each change once, in order, named after the writing device, and resumes
// by itself.
func TestWatch(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			srv := vsstest.Start(t, vsstest.Config{})
			ctx := testCtx(t)
			a := device(srv, "watch", "phone", p.opts...)
			b := device(srv, "watch", "laptop", p.opts...)
			put(t, a, "s", kv("before", 0, "x"))

			// A device starting from nothing takes the cursor, lists, then follows.
			cursor, err := b.GetChangeCursor(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			watchCtx, stop := context.WithCancel(ctx)
			defer stop()
			got := make(chan *vssv1.Change, 100)
			done := make(chan error, 1)
			go func() {
				defer close(got)
				for ch, err := range b.Watch(watchCtx, &vssv1.WatchChangesRequest{StoreId: "s", Cursor: cursor}) {
					if err != nil {
						done <- err
						return
					}
					got <- ch
				}
				done <- nil
			}()

			const n = 20
			want := make([]string, 0, 3*n)
			for i := range n {
				key := "k" + strconv.Itoa(i)
				put(t, a, "s", kv(key, 0, "1"))
				put(t, a, "s", kv(key, 1, "2"))
				if _, err := a.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: kv(key, 2, "")}); err != nil {
					t.Fatal(err)
				}
				want = append(want, key+"@1", key+"@2", key+"@2 deleted")
				if i%5 == 4 {
					srv.CloseClientConnections()
				}
			}
			for i, w := range want {
				select {
				case ch, ok := <-got:
					if !ok {
						t.Fatalf("the watch ended after %d changes: %v", i, <-done)
					}
					s := fmt.Sprintf("%s@%d", ch.GetKey(), ch.GetVersion())
					if ch.GetDeleted() {
						s += " deleted"
					}
					if s != w || ch.GetDeviceId() != "phone" {
						t.Fatalf("change %d: got %s from %q, want %s from phone", i, s, ch.GetDeviceId(), w)
					}
				case <-ctx.Done():
					t.Fatalf("change %d (%s) never came", i, w)
				}
			}
			stop()
			if err := <-done; err != nil {
				t.Fatalf("the watch ended with %v after its context", err)
			}
			for ch := range got {
				t.Fatalf("a change beyond those written: %v", ch)
			}
		})
	}
}

// TestListChangesSince catches up page by page and gives the cursor to continue from.
func TestListChangesSince(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	ctx := testCtx(t)
	a := device(srv, "list", "phone")
	cursor, err := a.GetChangeCursor(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		put(t, a, "s", kv("k"+strconv.Itoa(i), 0, "v"+strconv.Itoa(i)))
	}
	changes, next, err := a.ListChangesSince(ctx, &vssv1.ListChangesRequest{StoreId: "s", Cursor: cursor, PageSize: 3, IncludeValues: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 7 {
		t.Fatalf("got %d changes, want 7", len(changes))
	}
	for i, ch := range changes {
		if ch.GetKey() != "k"+strconv.Itoa(i) || string(ch.GetValue()) != "v"+strconv.Itoa(i) || ch.GetDeviceId() != "phone" {
			t.Fatalf("change %d: %v", i, ch)
		}
	}
	put(t, a, "s", kv("last", 0, "v"))
	more, _, err := a.ListChangesSince(ctx, &vssv1.ListChangesRequest{StoreId: "s", Cursor: next})
	if err != nil || len(more) != 1 || more[0].GetKey() != "last" {
		t.Fatalf("after the returned cursor: %v, %v; want the one later change", more, err)
	}
}

// TestResync: a cursor the server cannot continue from ends Watch and ListChanges with
// ErrResync, not with endless reconnects.
func TestResync(t *testing.T) {
	t.Parallel()
	srv := vsstest.Start(t, vsstest.Config{})
	ctx := testCtx(t)
	a := device(srv, "resync", "phone")
	put(t, a, "s", kv("k", 0, "v")) // written before anyone followed the store

	for name, cursor := range map[string]string{"empty": "", "beyond the latest": "1000000"} {
		t.Run(name, func(t *testing.T) {
			var last error
			for _, err := range a.Watch(ctx, &vssv1.WatchChangesRequest{StoreId: "s", Cursor: cursor}) {
				last = err
				if err == nil {
					t.Fatal("a change from a cursor the server cannot continue from")
				}
			}
			if !errors.Is(last, vssclient.ErrResync) || vssclient.FeedError(last) == nil {
				t.Fatalf("Watch ended with %v, want ErrResync with the server's FeedError", last)
			}
			_, err := a.ListChanges(ctx, &vssv1.ListChangesRequest{StoreId: "s", Cursor: cursor})
			if !errors.Is(err, vssclient.ErrResync) {
				t.Fatalf("ListChanges: %v, want ErrResync", err)
			}
		})
	}
}

// blockRenewals makes the server drop RenewLease calls while *on is set, as a network
// partition between a device and the server would.
func blockRenewals(on *atomic.Bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if on.Load() && strings.HasSuffix(r.URL.Path, "/RenewLease") {
				http.Error(w, "partitioned", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TestLease: a held lease refuses other holders, renews itself across many TTLs, fences
// its writes, and once lost refuses writes without sending them; the server refuses a
// write with a stale token.
func TestLease(t *testing.T) {
	t.Parallel()
	var partitioned atomic.Bool
	srv := vsstest.Start(t, vsstest.Config{Wrap: blockRenewals(&partitioned)})
	ctx := testCtx(t)
	a := device(srv, "lease", "phone")
	b := device(srv, "lease", "laptop")

	la, err := a.AcquireLease(ctx, "s", "node", "phone", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AcquireLease(ctx, "s", "node", "laptop", time.Second); vssclient.FeedReason(err) != vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_HELD ||
		vssclient.FeedError(err).GetLease().GetHolder() != "phone" {
		t.Fatalf("B acquired a held lease: %v", err)
	}
	first := la.Token()

	// Renewals keep it over several TTLs.
	time.Sleep(3500 * time.Millisecond)
	if err := la.Err(); err != nil {
		t.Fatalf("lost after several TTLs of renewals: %v", err)
	}
	if _, err := la.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 0, "a")}}); err != nil {
		t.Fatalf("fenced write by the holder: %v", err)
	}
	if la.Token() != first {
		t.Fatalf("the token changed on renewal: %d, then %d", first, la.Token())
	}

	// Cut off from the server, A loses its lease when the grant runs out; B takes it.
	partitioned.Store(true)
	select {
	case <-la.Lost():
	case <-time.After(3 * time.Second):
		t.Fatal("the lease was still held locally past its TTL without renewals")
	}
	partitioned.Store(false)
	if !errors.Is(la.Err(), vssclient.ErrLeaseLost) {
		t.Fatalf("Err: %v", la.Err())
	}
	// A gives the lease up at its own deadline, measured from when it sent its last renewal,
	// so the server's grant can outlive it by the renewal's transit time; B, like any device,
	// tries again while the server still reports the lease held.
	var lb *vssclient.Lease
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lb, err = b.AcquireLease(ctx, "s", "node", "laptop", time.Second)
		if err == nil || vssclient.FeedReason(err) != vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_HELD || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("B could not take the expired lease: %v", err)
	}
	defer lb.Release(ctx)
	if lb.Token() <= first {
		t.Fatalf("the new grant's token %d does not exceed the old %d", lb.Token(), first)
	}
	if _, err := la.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 1, "late")}}); !errors.Is(err, vssclient.ErrLeaseLost) {
		t.Fatalf("write through a lost lease: %v, want ErrLeaseLost", err)
	}

	// A late request with the old token, sent as a device that did not notice, is refused
	// by the server in the write's own transaction.
	seed := sha256.Sum256([]byte("lease"))
	raw := vssv1connect.NewVssServiceClient(http.DefaultClient, srv.URL)
	req := connect.NewRequest(&vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 1, "late")}})
	h, err := vssclient.Signature(secp256k1.PrivKeyFromBytes(seed[:])).Headers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header()[k] = v
	}
	req.Header().Set(vssclient.LeaseNameHeader, "node")
	req.Header().Set(vssclient.LeaseTokenHeader, strconv.FormatInt(first, 10))
	if _, err := raw.PutObjects(ctx, req); vssclient.FeedReason(err) != vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD {
		t.Fatalf("write with a stale token: %v, want LEASE_NOT_HELD", err)
	}
	if _, err := lb.PutObjects(ctx, &vssv1.PutObjectRequest{StoreId: "s", TransactionItems: []*vssv1.KeyValue{kv("k", 1, "b")}}); err != nil {
		t.Fatalf("the new holder's write: %v", err)
	}

	// Released, the lease is free at once and its writes fail locally.
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lb.DeleteObject(ctx, &vssv1.DeleteObjectRequest{StoreId: "s", KeyValue: kv("k", 2, "")}); !errors.Is(err, vssclient.ErrLeaseLost) {
		t.Fatalf("write after Release: %v", err)
	}
	lc, err := a.AcquireLease(ctx, "s", "node", "phone", time.Second)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if err := lc.Release(ctx); err != nil {
		t.Fatal(err)
	}
}
