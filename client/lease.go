package vssclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	vssv1 "github.com/govss/vss/gen/vss/v1"
)

// ErrLeaseLost is what a Lease's writes fail with, without being sent, once the lease is
// no longer held: the server refused a renewal (another holder may have it now), the
// renewals failed until the grant ran out, or the lease was released. Writes the server
// refused because of the lease (FeedErrorReason LEASE_NOT_HELD) match it too.
var ErrLeaseLost = errors.New("vssclient: the lease is no longer held")

// Lease is a lease held on a store: it renews itself in the background and fences the
// writes made through it (PutObjects, DeleteObject) with its token, so that the server
// refuses them once another holder was granted the lease. Once the lease is lost its
// writes fail with ErrLeaseLost without reaching the server. Release it when done.
type Lease struct {
	c                     *Client
	storeID, name, holder string
	ttl                   time.Duration

	mu       sync.Mutex
	lease    *vssv1.Lease
	deadline time.Time // by the local clock: when the grant ends unless renewed
	err      error     // why the lease was lost; nil while held

	lost chan struct{}
	stop chan struct{}
	done chan struct{}
}

// AcquireLease asks for the lease name on storeID for holder (for example the device's
// id), for ttl (1 s to 1 h), and returns it held and renewing itself until Release. If
// another holder has it, the error's FeedError (FeedReason LEASE_HELD) names them.
func (c *Client) AcquireLease(ctx context.Context, storeID, name, holder string, ttl time.Duration) (*Lease, error) {
	sent := time.Now()
	resp, err := unwrap(c.svc.AcquireLease(ctx, connect.NewRequest(&vssv1.AcquireLeaseRequest{
		StoreId: storeID, Name: name, Holder: holder, Ttl: durationpb.New(ttl)})))
	if err != nil {
		return nil, err
	}
	l := &Lease{c: c, storeID: storeID, name: name, holder: holder, ttl: ttl,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.granted(resp.GetLease(), sent)
	go l.renew()
	return l, nil
}

// GetLease returns the state of a lease: who holds it, with which token, until when.
func (c *Client) GetLease(ctx context.Context, storeID, name string) (*vssv1.Lease, error) {
	resp, err := unwrap(c.svc.GetLease(ctx, connect.NewRequest(&vssv1.GetLeaseRequest{StoreId: storeID, Name: name})))
	if err != nil {
		return nil, err
	}
	return resp.GetLease(), nil
}

// granted records a grant the server answered to a request sent at sent: its time left
// counts from then, so that the local deadline is never later than the server's.
func (l *Lease) granted(lease *vssv1.Lease, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lease = lease
	l.deadline = sent.Add(lease.GetTtlRemaining().AsDuration())
}

// Token returns the fencing token of the grant.
func (l *Lease) Token() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease.GetToken()
}

// State returns the grant as the server last reported it.
func (l *Lease) State() *vssv1.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease
}

// Lost is closed once the lease is lost or released.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns nil while the lease is held, and then why it was lost (matching
// ErrLeaseLost).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && !time.Now().Before(l.deadline) {
		l.loseLocked(fmt.Errorf("%w: the grant ran out before it could be renewed", ErrLeaseLost))
	}
	return l.err
}

func (l *Lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.loseLocked(err)
}

func (l *Lease) loseLocked(err error) {
	if l.err == nil {
		l.err = err
		close(l.lost)
	}
}

// renew renews the grant at a third of its time left, and again after failures, until
// it is lost or released.
func (l *Lease) renew() {
	defer close(l.done)
	for {
		l.mu.Lock()
		left := time.Until(l.deadline)
		l.mu.Unlock()
		wait := left / 3
		select {
		case <-l.stop:
			return
		case <-l.lost:
			return
		case <-time.After(wait):
		}
		if l.Err() != nil {
			return
		}
		ctx, cancel := context.WithDeadline(context.Background(), l.deadlineNow())
		sent := time.Now()
		resp, err := unwrap(l.c.svc.RenewLease(ctx, connect.NewRequest(&vssv1.RenewLeaseRequest{
			StoreId: l.storeID, Name: l.name, Token: l.Token(), Ttl: durationpb.New(l.ttl)})))
		cancel()
		switch {
		case err == nil:
			l.granted(resp.GetLease(), sent)
		case FeedReason(err) == vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD:
			l.lose(fmt.Errorf("%w: the server refused to renew it: %w", ErrLeaseLost, err))
			return
		}
		// Other failures: try again at a third of what is left, until it runs out.
	}
}

func (l *Lease) deadlineNow() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// fence returns the request carrying msg with the lease's headers, or ErrLeaseLost.
func fence[T any](l *Lease, msg *T) (*connect.Request[T], error) {
	if err := l.Err(); err != nil {
		return nil, err
	}
	r := connect.NewRequest(msg)
	r.Header().Set(LeaseNameHeader, l.name)
	r.Header().Set(LeaseTokenHeader, strconv.FormatInt(l.Token(), 10))
	return r, nil
}

// fenced maps the server's refusal of a fenced write to ErrLeaseLost, and loses the
// lease.
func (l *Lease) fenced(err error) error {
	if FeedReason(err) == vssv1.FeedErrorReason_FEED_ERROR_REASON_LEASE_NOT_HELD {
		err = fmt.Errorf("%w: the server refused the write: %w", ErrLeaseLost, err)
		l.lose(err)
	}
	return err
}

// PutObjects is Client.PutObjects fenced by the lease: the server applies it only if the
// lease is still held with this grant's token.
func (l *Lease) PutObjects(ctx context.Context, req *vssv1.PutObjectRequest) (*vssv1.PutObjectResponse, error) {
	r, err := fence(l, req)
	if err != nil {
		return nil, err
	}
	resp, err := unwrap(l.c.svc.PutObjects(ctx, r))
	return resp, l.fenced(err)
}

// DeleteObject is Client.DeleteObject fenced by the lease.
func (l *Lease) DeleteObject(ctx context.Context, req *vssv1.DeleteObjectRequest) (*vssv1.DeleteObjectResponse, error) {
	r, err := fence(l, req)
	if err != nil {
		return nil, err
	}
	resp, err := unwrap(l.c.svc.DeleteObject(ctx, r))
	return resp, l.fenced(err)
}

// Release stops the renewals and gives the lease up, so that another holder may take it
// at once. Writes through the Lease fail with ErrLeaseLost afterwards. Releasing a lease
// already lost only stops its renewals.
func (l *Lease) Release(ctx context.Context) error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
	held := l.Err() == nil
	l.lose(fmt.Errorf("%w: it was released", ErrLeaseLost))
	if !held {
		return nil
	}
	_, err := l.c.svc.ReleaseLease(ctx, connect.NewRequest(&vssv1.ReleaseLeaseRequest{StoreId: l.storeID, Name: l.name, Token: l.Token()}))
	return err
}
