package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	vssv1 "github.com/govss/vss/gen/vss/v1"
	"github.com/govss/vss/storage"
)

// Bounds of a lease's time to live.
const (
	// MinLeaseTTL is the shortest lease: renewals have to reach the server in time.
	MinLeaseTTL = time.Second
	// MaxLeaseTTL is the longest lease: a device that vanished holds it no longer.
	MaxLeaseTTL = time.Hour
	// MaxLeaseNameLength bounds lease names, holders and device ids, in characters.
	MaxLeaseNameLength = 120
)

// The request headers that name the writing device and fence a write through Connect,
// gRPC and gRPC-Web (see the VssService comment in proto/vss/v1/vss.proto).
const (
	DeviceIDHeader   = "Vss-Device-Id"
	LeaseNameHeader  = "Vss-Lease-Name"
	LeaseTokenHeader = "Vss-Lease-Token"
)

// Leases serves AcquireLease, RenewLease, ReleaseLease and GetLease beside Service,
// with its validation and error mapping. Fenced writes go through Service: the binding
// turns the lease headers into a storage.Writer (writerFromHeader) that the store
// checks in the write's transaction.
type Leases struct {
	svc   *Service
	store storage.Leases
}

// printable checks a name of the lease API: 1 to MaxLeaseNameLength printable ASCII
// characters (headers carry them, and gRPC metadata is ASCII), or empty if allowed.
func printable(field, s string, allowEmpty bool) error {
	if s == "" {
		if allowEmpty {
			return nil
		}
		return invalidf("%s must not be empty", field)
	}
	if len(s) > MaxLeaseNameLength {
		return invalidf("%s is longer than %d characters", field, MaxLeaseNameLength)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return invalidf("%s must be printable ASCII", field)
		}
	}
	return nil
}

func validateTTL(d interface {
	AsDuration() time.Duration
	CheckValid() error
}, present bool) (time.Duration, error) {
	if !present {
		return 0, invalidf("ttl is missing")
	}
	if err := d.CheckValid(); err != nil {
		return 0, invalidf("ttl is not a valid duration")
	}
	ttl := d.AsDuration()
	if ttl < MinLeaseTTL || ttl > MaxLeaseTTL {
		return 0, invalidf("ttl must be between %s and %s, got %s", MinLeaseTTL, MaxLeaseTTL, ttl)
	}
	return ttl, nil
}

func validateLease(storeID, name string) error {
	if err := validateStoreID(storeID); err != nil {
		return err
	}
	return printable("name", name, false)
}

func validateToken(token int64) error {
	if token <= 0 {
		return invalidf("token must be a fencing token returned by AcquireLease, got %d", token)
	}
	return nil
}

func leaseMessage(l storage.Lease) *vssv1.Lease {
	return &vssv1.Lease{StoreId: l.StoreID, Name: l.Name, Holder: l.Holder, Token: l.Token,
		ExpiresAt: timestamppb.New(l.ExpiresAt), Held: l.Held, TtlRemaining: durationpb.New(l.Remaining)}
}

// AcquireLease grants user the lease if no one holds it.
func (l *Leases) AcquireLease(ctx context.Context, user string, req *vssv1.AcquireLeaseRequest) (*vssv1.AcquireLeaseResponse, error) {
	if err := validateLease(req.GetStoreId(), req.GetName()); err != nil {
		return nil, err
	}
	if err := printable("holder", req.GetHolder(), true); err != nil {
		return nil, err
	}
	ttl, err := validateTTL(req.GetTtl(), req.Ttl != nil)
	if err != nil {
		return nil, err
	}
	got, err := l.store.AcquireLease(ctx, user, req.GetStoreId(), req.GetName(), req.GetHolder(), ttl)
	if err != nil {
		return nil, l.svc.classify(ctx, err)
	}
	return &vssv1.AcquireLeaseResponse{Lease: leaseMessage(got)}, nil
}

// RenewLease extends user's grant of the lease.
func (l *Leases) RenewLease(ctx context.Context, user string, req *vssv1.RenewLeaseRequest) (*vssv1.RenewLeaseResponse, error) {
	if err := validateLease(req.GetStoreId(), req.GetName()); err != nil {
		return nil, err
	}
	if err := validateToken(req.GetToken()); err != nil {
		return nil, err
	}
	ttl, err := validateTTL(req.GetTtl(), req.Ttl != nil)
	if err != nil {
		return nil, err
	}
	got, err := l.store.RenewLease(ctx, user, req.GetStoreId(), req.GetName(), req.GetToken(), ttl)
	if err != nil {
		return nil, l.svc.classify(ctx, err)
	}
	return &vssv1.RenewLeaseResponse{Lease: leaseMessage(got)}, nil
}

// ReleaseLease ends user's grant of the lease, if it is still in force.
func (l *Leases) ReleaseLease(ctx context.Context, user string, req *vssv1.ReleaseLeaseRequest) (*vssv1.ReleaseLeaseResponse, error) {
	if err := validateLease(req.GetStoreId(), req.GetName()); err != nil {
		return nil, err
	}
	if err := validateToken(req.GetToken()); err != nil {
		return nil, err
	}
	released, err := l.store.ReleaseLease(ctx, user, req.GetStoreId(), req.GetName(), req.GetToken())
	if err != nil {
		return nil, l.svc.classify(ctx, err)
	}
	return &vssv1.ReleaseLeaseResponse{Released: released}, nil
}

// GetLease returns the lease's latest grant.
func (l *Leases) GetLease(ctx context.Context, user string, req *vssv1.GetLeaseRequest) (*vssv1.GetLeaseResponse, error) {
	if err := validateLease(req.GetStoreId(), req.GetName()); err != nil {
		return nil, err
	}
	got, err := l.store.GetLease(ctx, user, req.GetStoreId(), req.GetName())
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, &Error{Code: vssv1.ErrorCode_NO_SUCH_KEY_EXCEPTION, Message: "no such lease: it was never granted"}
		}
		return nil, l.svc.classify(ctx, err)
	}
	return &vssv1.GetLeaseResponse{Lease: leaseMessage(got)}, nil
}

// writerFromHeader reads the writing device and the fencing lease of a write from its
// request headers: the one place that validates them.
func writerFromHeader(h http.Header) (storage.Writer, error) {
	var w storage.Writer
	w.DeviceID = h.Get(DeviceIDHeader)
	if err := printable(DeviceIDHeader+" header", w.DeviceID, true); err != nil {
		return w, err
	}
	name, token := h.Get(LeaseNameHeader), h.Get(LeaseTokenHeader)
	if name == "" && token == "" {
		return w, nil
	}
	if name == "" || token == "" {
		return w, invalidf("%s and %s go together: send both or neither", LeaseNameHeader, LeaseTokenHeader)
	}
	if err := printable(LeaseNameHeader+" header", name, false); err != nil {
		return w, err
	}
	n, err := strconv.ParseInt(token, 10, 64)
	if err != nil || n <= 0 {
		return w, invalidf("%s must be a fencing token returned by AcquireLease", LeaseTokenHeader)
	}
	w.Lease = &storage.LeaseClaim{Name: name, Token: n}
	return w, nil
}
