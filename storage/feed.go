package storage

import (
	"context"
	"errors"
	"time"
)

// The change feed and leases extend a Store without changing its four operations. Once
// a store is followed, every write of it records, in its own transaction, one Change
// per key it created, updated or deleted, numbered by a
// per-(user, store id) sequence that a write takes under a lock it holds until it
// commits: the sequence numbers of a store are therefore in commit order, and a reader
// that sees a change sees every change numbered before it. The store's global version
// is a key like any other there (GlobalVersionKey).
//
// A store is followed from the first Changes call for it (any device asking for its
// cursor or its changes) and for good; the writes of a store nobody follows record
// nothing, so that the feed costs nothing in the stores no device follows. The first
// Changes call starts the feed at 0 if the store holds no key and at 1 otherwise, its
// earlier history counted as pruned: a reader with cursor 0 gets ErrCursorExpired and
// lists the store, as after a gap in retention.

// Errors of the change feed and of leases.
var (
	// ErrCursorExpired means changes after the requested sequence number were pruned:
	// the reader must list the store again.
	ErrCursorExpired = errors.New("storage: changes after the cursor are no longer retained")
	// ErrCursorUnknown means the requested sequence number lies beyond the store's
	// latest change, which the store never issued.
	ErrCursorUnknown = errors.New("storage: cursor beyond the store's latest change")
	// ErrLeaseHeld means another grant of the lease is in force; stores return it
	// wrapped in a *LeaseHeldError.
	ErrLeaseHeld = errors.New("storage: lease held by another holder")
	// ErrLeaseNotHeld means the lease is not held with the given token (expired,
	// released or granted to someone else since); a write fenced with it wrote nothing.
	ErrLeaseNotHeld = errors.New("storage: lease not held with this token")
)

// Writer describes who makes a write: the device it names for the change feed and the
// lease that fences it. The zero Writer is an anonymous, unfenced write, which is what
// every write through the VSS HTTP API is.
type Writer struct {
	// DeviceID is recorded with every change of the write.
	DeviceID string
	// Lease, when set, makes the write commit only if that lease of the written store is
	// held with Lease.Token and not expired, checked in the write's own transaction;
	// otherwise the write fails with ErrLeaseNotHeld and writes nothing.
	Lease *LeaseClaim
}

// LeaseClaim names a lease grant: the lease's name and the grant's fencing token.
type LeaseClaim struct {
	Name  string
	Token int64
}

type writerKey struct{}

// WithWriter returns ctx carrying w for the Put or Delete called with it. The writer
// travels in the context so that Store keeps its four operations; stores that implement
// Feed read it in their write path with WriterFrom.
func WithWriter(ctx context.Context, w Writer) context.Context {
	return context.WithValue(ctx, writerKey{}, w)
}

// WriterFrom returns the Writer of ctx, or the zero Writer.
func WriterFrom(ctx context.Context) Writer {
	w, _ := ctx.Value(writerKey{}).(Writer)
	return w
}

// Change is one entry of a store's change feed.
type Change struct {
	// Seq numbers the change within its store, in commit order, from 1.
	Seq int64
	Key string
	// Version is the key's version after the write; for a delete, the version deleted.
	Version  int64
	Deleted  bool
	DeviceID string
	// Value is the key's value at the time of the read, when asked for, the change is
	// not a delete and the key still holds Version; HasValue tells whether it is set.
	Value    []byte
	HasValue bool
	// ChangedAt is the database's time of the write.
	ChangedAt time.Time
}

// ChangesRequest asks for the changes of a store after a sequence number.
type ChangesRequest struct {
	StoreID string
	// After is the last sequence number the reader has; 0 asks for the whole feed.
	After int64
	// Limit caps the number of changes; 0 returns none, only the head.
	Limit int
	// WithValues asks for values. The store stops adding changes once their values
	// exceed MaxValueBytes in all, but always returns at least one change.
	WithValues    bool
	MaxValueBytes int64
	// HeadOnly asks for the head alone: no changes, and no check of After.
	HeadOnly bool
}

// ChangePage is the answer to a ChangesRequest, read from one snapshot.
type ChangePage struct {
	Changes []Change
	// Head is the sequence number of the store's latest change (0 for none).
	Head int64
}

// Feed is implemented by stores that keep a change feed.
type Feed interface {
	// Changes returns the changes of a store after req.After, oldest first, and makes
	// the store followed if it was not (see above). It returns
	// ErrCursorExpired if changes after req.After were pruned, and ErrCursorUnknown if
	// req.After is beyond the head.
	Changes(ctx context.Context, user string, req ChangesRequest) (ChangePage, error)
	// PruneChanges deletes the changes older than retention, by the database's clock,
	// always a prefix of each store's feed, and returns how many it deleted.
	PruneChanges(ctx context.Context, retention time.Duration) (int64, error)
	// WatchCommits calls wake after writes to a store committed, with the store's user
	// and id; with user "" it means "any store may have changed" (after the store lost
	// notifications, for example). On PostgreSQL it hears the writes of every server
	// instance on the database. A notification only says to look: it carries no change,
	// and a lost one delays a reader until its next look, never loses a change. Once it
	// listens it calls wake("", ""), since a reader may have looked before it listened
	// and a write committed in between woke nobody. It blocks until ctx ends. wake must
	// not block.
	WatchCommits(ctx context.Context, wake func(user, storeID string)) error
}

// Lease is the state of a named lease on a store.
type Lease struct {
	StoreID, Name, Holder string
	// Token is the fencing token of the latest grant.
	Token int64
	// ExpiresAt is when the grant ends, by the database's clock; Remaining is what was
	// left of it when the store answered (0 when not held).
	ExpiresAt time.Time
	Remaining time.Duration
	Held      bool
}

// LeaseHeldError is the error of an AcquireLease refused because of the grant Lease. It
// matches ErrLeaseHeld under errors.Is.
type LeaseHeldError struct{ Lease Lease }

func (e *LeaseHeldError) Error() string { return ErrLeaseHeld.Error() }

// Is makes errors.Is(err, ErrLeaseHeld) true.
func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

// Leases is implemented by stores that keep leases. Time is the database's clock, so
// every server instance on one database agrees on expiry.
type Leases interface {
	// AcquireLease grants the lease to holder for ttl if no grant is in force, with a
	// token larger than any granted before for it; otherwise it returns a
	// *LeaseHeldError.
	AcquireLease(ctx context.Context, user, storeID, name, holder string, ttl time.Duration) (Lease, error)
	// RenewLease extends the grant with token to ttl from now, or returns
	// ErrLeaseNotHeld.
	RenewLease(ctx context.Context, user, storeID, name string, token int64, ttl time.Duration) (Lease, error)
	// ReleaseLease ends the grant with token if it is in force, and reports whether it
	// did.
	ReleaseLease(ctx context.Context, user, storeID, name string, token int64) (bool, error)
	// GetLease returns the lease's latest grant, or ErrNotFound if it was never granted.
	GetLease(ctx context.Context, user, storeID, name string) (Lease, error)
}

// CheckCursor applies the one rule of cursors to a reader that has every change up to
// after, in a store whose latest change is head and whose oldest retained change is
// oldest (0 when none is retained), all read from one snapshot. Pruning removes a
// prefix of a store's feed, so the changes after `after` are all retained exactly when
// after is at least the last change pruned: oldest-1, or head when nothing is left.
func CheckCursor(after, head, oldest int64) error {
	switch {
	case after > head:
		return ErrCursorUnknown
	case oldest == 0 && after < head, oldest > 0 && after < oldest-1:
		return ErrCursorExpired
	}
	return nil
}
