package conformance_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/gen/vss/v1/vssv1connect"
	"github.com/govss/vss/server"
	"github.com/govss/vss/storage"
)

// fenced makes a request of user that carries the lease name and token.
func fenced[T any](user, device, lease string, token int64, msg *T) *connect.Request[T] {
	r := req(user, device, msg)
	r.Header().Set(server.LeaseNameHeader, lease)
	r.Header().Set(server.LeaseTokenHeader, strconv.FormatInt(token, 10))
	return r
}

func acquire(ctx context.Context, c vssv1connect.VssServiceClient, user, storeID, name, holder string, ttl time.Duration) (*vssv1.Lease, error) {
	resp, err := c.AcquireLease(ctx, req(user, "", &vssv1.AcquireLeaseRequest{StoreId: storeID, Name: name, Holder: holder, Ttl: durationpb.New(ttl)}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetLease(), nil
}

// TestLeases checks leases and fenced writes on every store through every Connect
// protocol: one holder at a time, fencing tokens that only grow, renewals that keep a
// lease across many TTLs, and writes refused once their lease is gone, even when they
// arrive late.
func TestLeases(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			for _, p := range feedProtocols {
				t.Run(p.name, func(t *testing.T) {
					t.Parallel()
					c := p.new(fs.base)
					ctx := context.Background()
					user, sid, name := "lease-"+p.name, "wallet", "node"
					// A TTL with room for renewals that a loaded machine delays.
					ttl := 2 * time.Second
					// Renewals across many TTLs through one protocol; once through the others.
					renewals := 1
					if p.name == feedProtocols[0].name {
						renewals = 8
					}

					if _, err := c.GetLease(ctx, req(user, "", &vssv1.GetLeaseRequest{StoreId: sid, Name: name})); connect.CodeOf(err) != connect.CodeNotFound {
						t.Fatalf("GetLease of a lease never granted: %v, want not_found", err)
					}
					a, err := acquire(ctx, c, user, sid, name, "phone", ttl)
					if err != nil {
						t.Fatal(err)
					}
					if !a.GetHeld() || a.GetToken() != 1 || a.GetHolder() != "phone" || a.GetTtlRemaining().AsDuration() <= 0 {
						t.Fatalf("first grant %v", a)
					}
					// B is refused and told who holds it.
					_, err = acquire(ctx, c, user, sid, name, "laptop", ttl)
					fe := wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_HELD)
					if fe.GetLease().GetHolder() != "phone" || fe.GetLease().GetToken() != 1 {
						t.Errorf("refusal names %v", fe.GetLease())
					}
					// A writes under its lease.
					put := func(token int64, key string) error {
						_, err := c.PutObjects(ctx, fenced(user, "phone", name, token, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv(key, -1, key)}}))
						return err
					}
					if err := put(1, "k1"); err != nil {
						t.Fatalf("write under the lease: %v", err)
					}
					if _, err := c.DeleteObject(ctx, fenced(user, "phone", name, 1, &vssv1.DeleteObjectRequest{StoreId: sid, KeyValue: kv("k1", -1, "")})); err != nil {
						t.Fatalf("delete under the lease: %v", err)
					}
					wantFeedError(t, put(2, "k2"), connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
					_, err = c.PutObjects(ctx, fenced(user, "phone", "other", 1, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("k2", -1, "")}}))
					wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
					_, err = c.PutObjects(ctx, fenced(user, "phone", name, 1, &vssv1.PutObjectRequest{StoreId: "another-store", TransactionItems: []*vssv1.KeyValue{kv("k2", -1, "")}}))
					wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)

					// Renewals keep the lease across many TTLs; B stays refused.
					for range renewals { // 8 renewals: four TTLs
						time.Sleep(ttl / 2)
						r, err := c.RenewLease(ctx, req(user, "", &vssv1.RenewLeaseRequest{StoreId: sid, Name: name, Token: 1, Ttl: durationpb.New(ttl)}))
						if err != nil {
							t.Fatalf("renewal: %v", err)
						}
						if r.Msg.GetLease().GetToken() != 1 || !r.Msg.GetLease().GetHeld() {
							t.Fatalf("renewed %v", r.Msg.GetLease())
						}
						if _, err := acquire(ctx, c, user, sid, name, "laptop", ttl); err == nil {
							t.Fatal("B acquired a lease A keeps renewing")
						}
					}
					if err := put(1, "k2"); err != nil {
						t.Fatalf("write after renewals: %v", err)
					}

					// A stops renewing; once the TTL has passed B gets a larger token, and A's
					// write with the old one is refused and writes nothing.
					time.Sleep(ttl + 200*time.Millisecond)
					b, err := acquire(ctx, c, user, sid, name, "laptop", ttl)
					if err != nil {
						t.Fatalf("B after A's lease expired: %v", err)
					}
					if b.GetToken() != 2 {
						t.Errorf("B's token %d, want 2", b.GetToken())
					}
					wantFeedError(t, put(1, "late"), connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
					if _, err := c.GetObject(ctx, req(user, "", &vssv1.GetObjectRequest{StoreId: sid, Key: "late"})); connect.CodeOf(err) != connect.CodeNotFound {
						t.Errorf("the refused write left its key: %v", err)
					}
					_, err = c.RenewLease(ctx, req(user, "", &vssv1.RenewLeaseRequest{StoreId: sid, Name: name, Token: 1, Ttl: durationpb.New(ttl)}))
					wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
					if r, err := c.ReleaseLease(ctx, req(user, "", &vssv1.ReleaseLeaseRequest{StoreId: sid, Name: name, Token: 1})); err != nil || r.Msg.GetReleased() {
						t.Errorf("A's release of a lost lease: %v, %v; want released false", r, err)
					}
					// B releases; the next grant's token grows again.
					if r, err := c.ReleaseLease(ctx, req(user, "", &vssv1.ReleaseLeaseRequest{StoreId: sid, Name: name, Token: 2})); err != nil || !r.Msg.GetReleased() {
						t.Fatalf("B's release: %v, %v", r, err)
					}
					g, err := c.GetLease(ctx, req(user, "", &vssv1.GetLeaseRequest{StoreId: sid, Name: name}))
					if err != nil || g.Msg.GetLease().GetHeld() || g.Msg.GetLease().GetToken() != 2 {
						t.Errorf("GetLease after release: %v, %v", g, err)
					}
					a2, err := acquire(ctx, c, user, sid, name, "phone", ttl)
					if err != nil || a2.GetToken() != 3 {
						t.Fatalf("acquire after release: %v, %v; want token 3", a2, err)
					}
					// Bad requests.
					for _, bad := range []*vssv1.AcquireLeaseRequest{
						{StoreId: sid, Name: "", Ttl: durationpb.New(ttl)},
						{StoreId: sid, Name: "n", Ttl: durationpb.New(time.Millisecond)},
						{StoreId: sid, Name: "n", Ttl: durationpb.New(2 * time.Hour)},
						{StoreId: sid, Name: "n"},
						{StoreId: sid, Name: "ü", Ttl: durationpb.New(ttl)},
					} {
						if _, err := c.AcquireLease(ctx, req(user, "", bad)); connect.CodeOf(err) != connect.CodeInvalidArgument {
							t.Errorf("AcquireLease %v: %v, want invalid_argument", bad, err)
						}
					}
					r := req(user, "", &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("x", -1, "")}})
					r.Header().Set(server.LeaseNameHeader, name)
					if _, err := c.PutObjects(ctx, r); connect.CodeOf(err) != connect.CodeInvalidArgument {
						t.Errorf("a lease name without a token: %v, want invalid_argument", err)
					}
				})
			}
		})
	}
}

// TestDeleteUserClearsFeed checks that the admin command deleting a user also forgets
// the user's change feed, so that devices list their stores again, and ends the user's
// lease grants without resetting their tokens.
func TestDeleteUserClearsFeed(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			c := feedProtocols[0].new(fs.base)
			ctx := context.Background()
			user, sid := "gone", "s"
			follow(t, c, user, sid)
			if _, err := acquire(ctx, c, user, sid, "node", "phone", time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutObjects(ctx, fenced(user, "phone", "node", 1, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}})); err != nil {
				t.Fatal(err)
			}
			_, cursor := listChanges(t, c, user, sid, "", 0, false)
			if n, err := fs.store.(storage.Admin).DeleteUser(ctx, user); err != nil || n != 1 {
				t.Fatalf("DeleteUser = %d, %v", n, err)
			}
			_, err := c.ListChanges(ctx, req(user, "", &vssv1.ListChangesRequest{StoreId: sid, Cursor: cursor}))
			wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_CURSOR_EXPIRED)
			_, err = c.PutObjects(ctx, fenced(user, "phone", "node", 1, &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("k", 0, "v")}}))
			wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
			if l, err := acquire(ctx, c, user, sid, "node", "laptop", time.Minute); err != nil || l.GetToken() != 2 {
				t.Errorf("acquire after DeleteUser: %v, %v; want token 2", l, err)
			}
		})
	}
}

// TestFencedWritesUnderConcurrency races writes fenced with the valid token, with a
// stale one and unfenced, so that the group commit puts them into shared transactions:
// each write gets its own outcome, the refused ones leave nothing, and the feed holds
// exactly the accepted ones, numbered without gaps.
func TestFencedWritesUnderConcurrency(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			fs := serveFeed(t, st.open(t), server.FeedOptions{})
			c := feedProtocols[1].new(fs.base)
			ctx := context.Background()
			user, sid := "fenced", "s"
			follow(t, c, user, sid)
			l, err := acquire(ctx, c, user, sid, "node", "phone", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			const n = 60
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := &vssv1.PutObjectRequest{StoreId: sid, TransactionItems: []*vssv1.KeyValue{kv("k"+strconv.Itoa(i), 0, "v")}}
					switch i % 3 {
					case 0:
						_, errs[i] = c.PutObjects(ctx, fenced(user, "phone", "node", l.GetToken(), msg))
					case 1:
						_, errs[i] = c.PutObjects(ctx, fenced(user, "old", "node", l.GetToken()+1, msg))
					default:
						_, errs[i] = c.PutObjects(ctx, req(user, "free", msg))
					}
				}()
			}
			wg.Wait()
			accepted := map[string]bool{}
			for i, err := range errs {
				key := "k" + strconv.Itoa(i)
				if i%3 == 1 {
					wantFeedError(t, err, connect.CodeFailedPrecondition, vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD)
					continue
				}
				if err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				accepted[key] = true
			}
			changes, _ := listChanges(t, c, user, sid, "", 0, false)
			if len(changes) != len(accepted) {
				t.Fatalf("%d changes for %d accepted writes: %v", len(changes), len(accepted), describe(changes))
			}
			for i, ch := range changes {
				if ch.GetCursor() != strconv.Itoa(i+1) || !accepted[ch.GetKey()] || ch.GetDeviceId() == "old" {
					t.Fatalf("change %d: %v", i+1, ch)
				}
				delete(accepted, ch.GetKey())
			}
		})
	}
}
