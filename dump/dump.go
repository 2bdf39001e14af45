// Package dump writes and reads VSS dumps: the format, specified in docs/dump-format.md,
// in which every store of a user (or of a whole database) moves between servers and
// between stores with its keys, versions, values, global versions and listing order.
//
// A Writer and a Reader hold one record at a time, so a dump of any size streams in
// bounded memory. The Reader checks everything a dump promises (the order of its
// records, the limits of the VSS contract, the checksum of each store and of the whole
// dump) and reports a bad dump with a *FormatError that matches one of the sentinel
// errors below under errors.Is. Values are carried as stored and never interpreted.
package dump

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
	"unicode/utf8"

	dumpv1 "github.com/govss/vss/gen/vss/dump/v1"
)

// FormatVersion is the version of the format this package writes and reads.
const FormatVersion = 1

// Magic is the 12 bytes every dump starts with: 0x89 against 7-bit channels, the name,
// and CR LF, 0x1A, LF, which catch line-ending conversions as PNG's signature does.
const Magic = "\x89VSSDUMP\r\n\x1a\n"

// Limits of the VSS contract that every dump respects, the same as the server's (see
// server.MaxStoreIDLength and its neighbours), so that whatever one server stores,
// another can import.
const (
	// MaxStoreIDLength is the longest store id, in characters.
	MaxStoreIDLength = 120
	// MaxKeyLength is the longest key, in characters.
	MaxKeyLength = 600
	// MaxUserLength is the longest user, in characters.
	MaxUserLength = 120
	// MaxEntryBytes bounds the user, store id and key of an entry together, in bytes.
	// In a SCOPE_USER dump the user is not known, so the reader checks the store id and
	// the key alone; an import checks the sum with the user it writes for.
	MaxEntryBytes = 2560
	// DefaultMaxRecordBytes is the largest record a Reader accepts unless told
	// otherwise: a value of the server's default request body limit (64 MiB), with
	// room for its key and the record's own fields.
	DefaultMaxRecordBytes = 64<<20 + 64<<10
)

// GlobalVersionKey is the reserved key of a store's global version, which a dump
// carries in StoreBegin and never as an entry.
const GlobalVersionKey = "global_version"

// Scope tells whose stores a dump carries.
type Scope int

const (
	// ScopeUser is every store of one user, who is not named in the dump.
	ScopeUser Scope = Scope(dumpv1.Scope_SCOPE_USER)
	// ScopeDatabase is every store of every user of a database.
	ScopeDatabase Scope = Scope(dumpv1.Scope_SCOPE_DATABASE)
)

func (s Scope) String() string {
	switch s {
	case ScopeUser:
		return "user"
	case ScopeDatabase:
		return "database"
	}
	return fmt.Sprintf("Scope(%d)", int(s))
}

// Header describes a dump. FormatVersion is always the package's.
type Header struct {
	// Producer names the program and version that wrote the dump.
	Producer string
	// Created is when the producer began to read the data.
	Created time.Time
	// Scope tells whose stores the dump carries.
	Scope Scope
	// Snapshot tells that the data was read in one consistent snapshot.
	Snapshot bool
	// ListingOrder tells that each store's entries are in creation order.
	ListingOrder bool
	// Versions tells that each entry carries its stored version.
	Versions bool
	// GlobalVersions tells that each store carries its stored global version.
	GlobalVersions bool
}

// Store opens one store of a dump.
type Store struct {
	// User is the store's user: empty in a ScopeUser dump, set in a ScopeDatabase dump.
	User string
	// ID is the store id; it may be empty.
	ID string
	// GlobalVersion is the store's global version when HasGlobalVersion is true.
	GlobalVersion int64
	// HasGlobalVersion tells whether the store ever set its global version.
	HasGlobalVersion bool
}

// Entry is one key of a store, with its version and its value exactly as stored.
type Entry struct {
	Key     string
	Version int64
	Value   []byte
}

// Sum is what a StoreEnd or a Trailer states: how many records went before and their
// checksum.
type Sum struct {
	// Stores is the number of stores (0 in a store's Sum).
	Stores uint64
	// Entries is the number of entries.
	Entries uint64
	// SHA256 is the store's or the dump's checksum.
	SHA256 [32]byte
}

// Sentinel errors that a *FormatError matches under errors.Is, one per way a dump can
// be bad.
var (
	// ErrNotDump means the input does not start with Magic.
	ErrNotDump = errors.New("dump: not a VSS dump")
	// ErrVersion means the dump is of a format version this package does not know.
	ErrVersion = errors.New("dump: unsupported format version")
	// ErrTruncated means the input ended before the dump's Trailer.
	ErrTruncated = errors.New("dump: truncated")
	// ErrChecksum means a store's or the dump's checksum or count does not match its
	// records.
	ErrChecksum = errors.New("dump: checksum mismatch")
	// ErrTooLarge means a record is larger than the reader's limit.
	ErrTooLarge = errors.New("dump: record too large")
	// ErrOrder means a record is out of place: a second header, an entry outside a
	// store, stores out of order, anything after the trailer.
	ErrOrder = errors.New("dump: record out of order")
	// ErrInvalid means a record does not decode, or breaks a limit of the VSS contract.
	ErrInvalid = errors.New("dump: invalid record")
)

// FormatError is the error of a bad dump: which of the sentinel errors, where, and why.
type FormatError struct {
	// Err is one of the sentinel errors of this package.
	Err error
	// Offset is the position in the input of the record at fault, in bytes.
	Offset int64
	// Record is the number of the record at fault, counting the header as 1 (0 for the
	// magic number).
	Record int64
	// Reason says what is wrong, for people.
	Reason string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%v: record %d at byte %d: %s", e.Err, e.Record, e.Offset, e.Reason)
}

// Unwrap returns the sentinel error.
func (e *FormatError) Unwrap() error { return e.Err }

// checkStore checks a store's fields against the limits and the dump's scope; the
// errors are reasons for ErrInvalid.
func checkStore(scope Scope, s Store) error {
	switch {
	case scope == ScopeUser && s.User != "":
		return errors.New("a store of a user dump names a user")
	case scope == ScopeDatabase && s.User == "":
		return errors.New("a store of a database dump has no user")
	case !utf8.ValidString(s.User) || utf8.RuneCountInString(s.User) > MaxUserLength:
		return fmt.Errorf("user is not UTF-8 of at most %d characters", MaxUserLength)
	case !utf8.ValidString(s.ID) || utf8.RuneCountInString(s.ID) > MaxStoreIDLength:
		return fmt.Errorf("store id is not UTF-8 of at most %d characters", MaxStoreIDLength)
	case strings.IndexByte(s.ID, 0) >= 0 || strings.IndexByte(s.User, 0) >= 0:
		return errors.New("user or store id contains a NUL character")
	case s.HasGlobalVersion && s.GlobalVersion < 0:
		return fmt.Errorf("global version %d is negative", s.GlobalVersion)
	case !s.HasGlobalVersion && s.GlobalVersion != 0:
		return errors.New("global version set but marked absent")
	}
	return nil
}

// checkEntry checks an entry of store s against the limits.
func checkEntry(s Store, e Entry) error {
	switch {
	case e.Key == "":
		return errors.New("empty key")
	case e.Key == GlobalVersionKey:
		return fmt.Errorf("key %q is reserved for the global version", GlobalVersionKey)
	case !utf8.ValidString(e.Key) || utf8.RuneCountInString(e.Key) > MaxKeyLength:
		return fmt.Errorf("key is not UTF-8 of at most %d characters", MaxKeyLength)
	case strings.IndexByte(e.Key, 0) >= 0:
		return errors.New("key contains a NUL character")
	case len(s.User)+len(s.ID)+len(e.Key) > MaxEntryBytes:
		return fmt.Errorf("user, store id and key take %d bytes, more than %d", len(s.User)+len(s.ID)+len(e.Key), MaxEntryBytes)
	case e.Version < 0:
		return fmt.Errorf("version %d is negative", e.Version)
	}
	return nil
}

// storeAfter reports whether store b may follow store a: (user, id) strictly increases.
func storeAfter(a, b Store) bool {
	if a.User != b.User {
		return a.User < b.User
	}
	return a.ID < b.ID
}

// Domain-separation prefixes of the two checksums (docs/dump-format.md).
const (
	storeDomain = "vss.dump.v1 store\n"
	dumpDomain  = "vss.dump.v1 dump\n"
)

// StoreHash computes a store's checksum incrementally: Begin with the store, Add each
// entry in order, then Sum. Importers use it to check a resumed store's prefix against
// what the target already holds.
type StoreHash struct {
	h   hash.Hash
	n   uint64
	buf [8]byte
}

// NewStoreHash starts the checksum of store s (its user is not part of it, so that a
// store keeps its checksum when it moves to another user).
func NewStoreHash(s Store) *StoreHash {
	sh := &StoreHash{h: sha256.New()}
	sh.h.Write([]byte(storeDomain))
	sh.str(s.ID)
	if s.HasGlobalVersion {
		sh.h.Write([]byte{1})
	} else {
		sh.h.Write([]byte{0})
	}
	sh.u64(uint64(s.GlobalVersion))
	return sh
}

func (sh *StoreHash) str(s string) {
	binary.BigEndian.PutUint32(sh.buf[:4], uint32(len(s)))
	sh.h.Write(sh.buf[:4])
	sh.h.Write([]byte(s))
}

func (sh *StoreHash) u64(v uint64) {
	binary.BigEndian.PutUint64(sh.buf[:], v)
	sh.h.Write(sh.buf[:])
}

// Add adds the next entry of the store.
func (sh *StoreHash) Add(e Entry) {
	sh.str(e.Key)
	sh.u64(uint64(e.Version))
	sh.u64(uint64(len(e.Value)))
	sh.h.Write(e.Value)
	sh.n++
}

// Sum returns the number of entries added and the checksum so far.
func (sh *StoreHash) Sum() Sum {
	var s Sum
	s.Entries = sh.n
	sh.h.Sum(s.SHA256[:0])
	return s
}

// dumpHash computes the dump's checksum from the stores' checksums.
type dumpHash struct {
	h   hash.Hash
	buf [4]byte
}

func newDumpHash() *dumpHash {
	d := &dumpHash{h: sha256.New()}
	d.h.Write([]byte(dumpDomain))
	return d
}

func (d *dumpHash) str(s string) {
	binary.BigEndian.PutUint32(d.buf[:], uint32(len(s)))
	d.h.Write(d.buf[:])
	d.h.Write([]byte(s))
}

func (d *dumpHash) add(s Store, storeSum [32]byte) {
	d.str(s.User)
	d.str(s.ID)
	d.h.Write(storeSum[:])
}

func (d *dumpHash) sum() (out [32]byte) {
	d.h.Sum(out[:0])
	return out
}
