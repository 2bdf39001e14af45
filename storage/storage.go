// Package storage defines what the VSS service needs from a database: the operations on
// versioned keys (get, put, delete, list), the change feed and leases beside them, the
// errors they return, and nothing about SQL or drivers.
//
// The service validates every request before it reaches a Store, so implementations may
// assume well-formed input: store ids and keys within their length limits, keys distinct
// within one Put, versions of at least -1.
package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// GlobalVersionKey is the reserved key under which a store's global version is kept. It
// is stored as an ordinary row, as the reference VSS server does, so that databases can
// be shared with it; List never returns it as a key.
const GlobalVersionKey = "global_version"

// ListStart is the cursor of a listing's first page: every stored sort order is below it.
const ListStart int64 = math.MaxInt64

// Sentinel errors returned by every Store. Implementations wrap driver errors into them
// in one place; anything else they return is an internal failure.
var (
	// ErrNotFound means the key does not exist.
	ErrNotFound = errors.New("storage: no such key")
	// ErrConflict means a version condition failed; nothing was written. Stores return
	// it for nothing else: clients do not retry a conflict.
	ErrConflict = errors.New("storage: version conflict")
	// ErrUnavailable means the database could not be reached, or rolled the request back
	// because of concurrent requests (a deadlock or serialization failure that the store's
	// own retries did not get past); nothing was written and the request may be retried.
	ErrUnavailable = errors.New("storage: database unavailable")
	// ErrQuotaExceeded means a write would take the user over a Quota; nothing was
	// written. Stores return it wrapped in a *QuotaError.
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
)

// Quota limits what one user (an identity the server authenticates, across all of its
// store ids) may keep. Zero fields mean no limit. Stores enforce it in the transaction
// of each write, so concurrent writers of one user cannot go beyond it together.
//
// Bytes are the lengths of the keys plus the lengths of the values, as stored; store
// ids and versions are not counted. The row of a store's global version counts like any
// other entry: one key and the length of its key (the global version has no value).
// A write is refused only if it raises a counted amount above its limit, so writes that
// shrink a user's usage (deletes, smaller values) always pass, even for a user who is
// over a limit that was lowered.
type Quota struct {
	// MaxBytes is the most bytes of keys and values a user may store.
	MaxBytes int64
	// MaxKeys is the most entries a user may store.
	MaxKeys int64
}

// Enabled reports whether q limits anything.
func (q Quota) Enabled() bool { return q.MaxBytes > 0 || q.MaxKeys > 0 }

// QuotaError is the error of a write refused by a Quota. It matches ErrQuotaExceeded
// under errors.Is.
type QuotaError struct {
	// Bytes is true when the byte limit was exceeded, false for the key limit.
	Bytes bool
	// Limit is the limit that was exceeded.
	Limit int64
}

func (e *QuotaError) Error() string {
	if e.Bytes {
		return fmt.Sprintf("storage quota exceeded: at most %d bytes per user", e.Limit)
	}
	return fmt.Sprintf("key quota exceeded: at most %d keys per user", e.Limit)
}

// Is makes errors.Is(err, ErrQuotaExceeded) true.
func (e *QuotaError) Is(target error) bool { return target == ErrQuotaExceeded }

// QuotaStore is implemented by stores that enforce a Quota.
type QuotaStore interface {
	// SetQuota makes the store enforce q from now on (a zero Quota turns quotas off)
	// and forgets the usage counted before, which is recounted from the stored entries
	// at each user's next write. It must be called before the store serves requests.
	SetQuota(ctx context.Context, q Quota) error
}

// GroupCommitStats counts what a store's group commit (which lets concurrent writes
// share one transaction) committed since the store opened.
type GroupCommitStats struct {
	// Batches counts the transactions committed, Writes the requests in them.
	Batches, Writes int64
	// Shared counts the requests committed in a transaction with at least one other.
	Shared int64
	// Largest is the most requests one transaction held.
	Largest int64
}

// DatabaseHealth is what a store that reaches its database over the network
// (PostgreSQL) has seen of it since it opened, for /readyz and the metrics.
type DatabaseHealth struct {
	// ConnectionErrors counts the calls that could not reach the database: failed
	// connects, connections lost mid-call, a standby where a primary was expected.
	ConnectionErrors int64
	// PrimaryChanges counts the times a new connection reached another primary than
	// the one before it (another server, or the same one restarted): the failovers,
	// switchovers and restarts this process saw.
	PrimaryChanges int64
	// Unavailable is the time in all during which the database could not be reached,
	// from a connection error to the next call that succeeded, including the current
	// stretch when UnavailableSince is set.
	Unavailable time.Duration
	// UnavailableSince is when the current stretch began; zero while the database is
	// reachable.
	UnavailableSince time.Time
}

// HealthReporter is implemented by stores that follow their connection to the database.
type HealthReporter interface {
	DatabaseHealth() DatabaseHealth
}

// Usage is what one user stores, counted as a Quota counts it.
type Usage struct {
	User   string
	Bytes  int64
	Keys   int64
	Stores int64
}

// Admin is implemented by stores that support the operator's commands (vss-server
// admin). Unlike Store's methods, they may take several round trips.
type Admin interface {
	// Usage returns the usage of every user in user order, or of the given user only
	// (nothing if that user stores nothing). It is computed from the stored entries.
	Usage(ctx context.Context, user string) ([]Usage, error)
	// DeleteUser deletes every entry of user, in all stores, and returns how many
	// entries it deleted.
	DeleteUser(ctx context.Context, user string) (int64, error)
}

// KeyValue is one stored entry, or one item of a write with the version it expects.
type KeyValue struct {
	Key     string
	Version int64
	Value   []byte
}

// KeyVersion is one entry of a listing: a key and its version, without the value.
type KeyVersion struct {
	Key     string
	Version int64
	// SortOrder is the entry's position in creation order (larger is newer); it is the
	// cursor for the next page.
	SortOrder int64
}

// PutRequest is one atomic write. Version rules for Puts: 0 creates a key that must not
// exist, N > 0 replaces version N with N+1, -1 writes unconditionally and stores version
// 1. Deletes must exist and, unless their version is -1, match it. Any failed condition
// fails the whole request with ErrConflict and writes nothing. The store's global
// version is an ordinary Put item under GlobalVersionKey.
type PutRequest struct {
	StoreID string
	Puts    []KeyValue
	Deletes []KeyValue
}

// ListRequest asks for one page of keys in creation order, newest first.
type ListRequest struct {
	StoreID string
	// Prefix keeps keys starting with it, compared literally.
	Prefix string
	// Before returns only entries with a smaller sort order; ListStart for the first page.
	Before int64
	// Limit is the maximum number of keys to return; it is at least 0.
	Limit int
	// WithGlobalVersion asks for the store's global version, read in the same snapshot
	// as the keys.
	WithGlobalVersion bool
}

// ListPage is one page of a listing.
type ListPage struct {
	Keys []KeyVersion
	// GlobalVersion is the store's global version (0 if never set), filled only when the
	// request asked for it.
	GlobalVersion int64
}

// Store is a VSS database. All methods are safe for concurrent use.
type Store interface {
	// Get returns the entry stored under key, or ErrNotFound.
	Get(ctx context.Context, user, storeID, key string) (KeyValue, error)
	// Put applies a PutRequest atomically, or returns ErrConflict and changes nothing.
	Put(ctx context.Context, user string, req PutRequest) error
	// Delete removes key if it exists and version is -1 or equals its version; otherwise
	// it changes nothing. Either way it succeeds.
	Delete(ctx context.Context, user, storeID, key string, version int64) error
	// List returns up to req.Limit keys, excluding GlobalVersionKey.
	List(ctx context.Context, user string, req ListRequest) (ListPage, error)
	// Ping reports whether the database is reachable.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// AuthStore keeps the state of the built-in LNURL-auth issuer that several server
// instances on one database share. All methods are safe for concurrent use.
type AuthStore interface {
	// UseChallenge records that the challenge k1 was answered. It returns ErrConflict if
	// k1 was used before. The store may forget k1 after expiresAt.
	UseChallenge(ctx context.Context, k1 []byte, expiresAt time.Time) error
	// Secret returns the secret stored under name; if there is none it stores
	// generate()'s result first. When several instances race, all of them get the first
	// stored value.
	Secret(ctx context.Context, name string, generate func() ([]byte, error)) ([]byte, error)
}

// CheckQuota returns the *QuotaError of a write that takes a user from usage (bytes,
// keys) up by (dBytes, dKeys), or nil when q allows it.
func CheckQuota(q Quota, bytes, keys, dBytes, dKeys int64) error {
	if dBytes > 0 && q.MaxBytes > 0 && bytes+dBytes > q.MaxBytes {
		return &QuotaError{Bytes: true, Limit: q.MaxBytes}
	}
	if dKeys > 0 && q.MaxKeys > 0 && keys+dKeys > q.MaxKeys {
		return &QuotaError{Limit: q.MaxKeys}
	}
	return nil
}
