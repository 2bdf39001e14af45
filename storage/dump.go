package storage

import (
	"context"
	"errors"
	"fmt"
)

// ExportStore is one store of an export: its id and its global version, absent when
// the store never set one.
type ExportStore struct {
	ID               string
	GlobalVersion    int64
	HasGlobalVersion bool
}

// ExportVisitor receives a user's data from Exporter.ExportUser, in the order of the
// dump format (docs/dump-format.md): stores in increasing store id order (bytes), and
// within a store the entries oldest first, each with its version and its value as
// stored. A dump.Writer behind a small adapter is one.
type ExportVisitor interface {
	// BeginStore opens a store.
	BeginStore(s ExportStore) error
	// Entry is the next entry of the open store. The visitor may keep kv.Value.
	Entry(kv KeyValue) error
	// EndStore closes the open store.
	EndStore() error
}

// Exporter is implemented by stores that export a user's data for the dump format. It
// is a room of its own beside Store: the service's core never calls it.
type Exporter interface {
	// ExportUser reads every store of user in one consistent snapshot and hands it to v,
	// one page at a time (see ExportPageBytes), so that its memory does not grow with
	// the user's data. An error of v stops the export and is returned.
	ExportUser(ctx context.Context, user string, v ExportVisitor) error
	// ExportStore reads one store of user in one consistent snapshot and hands it to v,
	// as ExportUser does each store. A store without rows is handed over empty, without
	// a global version.
	ExportStore(ctx context.Context, user, storeID string, v ExportVisitor) error
}

// Export pages: an exporter reads a store's entries a page at a time, and a page ends at
// whichever comes first of ExportPageRows entries and ExportPageBytes of values, so that
// the values an export holds at a time stay near ExportPageBytes however large the
// user's data is. A single value larger than the budget is still one page.
const (
	// ExportPageBytes is the byte budget of a page's values.
	ExportPageBytes = 4 << 20
	// ExportPageRows is the most entries of a page.
	ExportPageRows = 256
)

// ExportPageLen returns how many of the entries whose value sizes are given, in order,
// make the next page of an export under budget bytes: every entry whose predecessors in
// the page total less than budget, and at least one.
func ExportPageLen(sizes []int64, budget int64) int {
	var total int64
	for i, n := range sizes {
		if i > 0 && total >= budget {
			return i
		}
		total += n
	}
	return len(sizes)
}

// ErrNotEmpty means an import was refused because the store it would write already
// holds data (or belongs to another import); nothing was written. Importers return it
// wrapped in a *NotEmptyError.
var ErrNotEmpty = errors.New("storage: store is not empty")

// NotEmptyError is the error of an import into a store that is not empty. It matches
// ErrNotEmpty under errors.Is.
type NotEmptyError struct {
	// StoreID is the store refused.
	StoreID string
}

func (e *NotEmptyError) Error() string {
	return fmt.Sprintf("storage: import refused: store %q is not empty", e.StoreID)
}

// Is makes errors.Is(err, ErrNotEmpty) true.
func (e *NotEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// ImportState is where the import of one store stands.
type ImportState struct {
	// Entries is how many entries of the store the target holds from this import: the
	// importer skips as many entries of the dump.
	Entries int64
	// Done is true when the store was imported completely.
	Done bool
	// SHA256 is, when Done, the store's checksum as EndImport recorded it.
	SHA256 []byte
}

// ImportSession is where an import sent to the server in chunks stands: the offset in
// the dump where the next chunk starts, and the dump reader's checkpoint there
// (dump.Reader.Checkpoint; nil before the header has been read); or, once Done, the
// import's result: the dump's size, stores, entries and checksum, with Checkpoint
// holding what identifies the dump's header instead (the server's headerKey), which no
// reader resumes from.
type ImportSession struct {
	Offset     int64
	Checkpoint []byte
	Done       bool
	Stores     int64
	Entries    int64
	SHA256     []byte
}

// AllUsers, as the user of FinishImport and AbortImport, names every user: the import
// of a whole database.
const AllUsers = ""

// Importer is implemented by stores that import a dump into empty stores
// (docs/dump-format.md), keeping each entry's version, the global version and the
// listing order. A room of its own beside Store, like Exporter.
//
// An import is named by an id that the importer derives from the dump (its header's
// producer and creation time, for instance), so that the same dump, read again after an
// interruption, is recognised: each store being imported has a record (import id,
// entries committed, complete or not) written in the same transaction as its rows. A
// store that holds data and has no record of that id is refused with a *NotEmptyError.
// Entries are written in batches, each in one transaction, and count against the
// store's Quota as writes do.
type Importer interface {
	// BeginImport starts the import of store st of user, or resumes it when the store
	// holds a record of importID: then it writes nothing and returns how far the store
	// got. A fresh start writes the global version (if st has one) and the record.
	BeginImport(ctx context.Context, user, importID string, st ExportStore) (ImportState, error)
	// ImportEntries writes the next entries of the store, in dump order, in one
	// transaction. from is the number of entries the store holds from this import
	// before them (ImportState.Entries, plus what was imported since); any other number
	// is refused with ErrConflict and nothing is written.
	ImportEntries(ctx context.Context, user, importID, storeID string, from int64, entries []KeyValue) error
	// EndImport marks the store complete, with its checksum.
	EndImport(ctx context.Context, user, importID, storeID string, sha256 []byte) error
	// FinishImport forgets the records and the session of importID, of user or of
	// AllUsers, once the whole dump has been imported and verified; the stores are then
	// ordinary stores.
	FinishImport(ctx context.Context, user, importID string) error
	// AbortImport deletes every store that importID has a record of, of user or of
	// AllUsers, whole (the import began each of them empty), with its records and
	// session, and returns how many stores it deleted. The usage of each user
	// concerned is counted again at its next write.
	AbortImport(ctx context.Context, user, importID string) (int64, error)
	// ImportSession returns the session of importID for user, and false when there is
	// none.
	ImportSession(ctx context.Context, user, importID string) (ImportSession, bool, error)
	// SaveImportSession records the session of importID for user. It must be called
	// only after the rows of everything before sess.Offset are committed, and with Done
	// only after FinishImport (which forgets the records and the session).
	SaveImportSession(ctx context.Context, user, importID string, sess ImportSession) error
}

// StoreStats is what one store holds, counted as a Quota counts it: its rows (the
// global version included) and their bytes of keys and values.
type StoreStats struct {
	Keys  int64
	Bytes int64
}

// Deleter is implemented by stores that delete a store or all of a user's data on the
// user's request (the DeleteStore and DeleteAllData RPCs).
type Deleter interface {
	// StoreStats counts what a store holds.
	StoreStats(ctx context.Context, user, storeID string) (StoreStats, error)
	// DeleteStore deletes every row of a store in one transaction, with its recorded
	// changes (devices list the store again), its lease grants (which expire) and its
	// import record, and returns what it held. The user's usage is counted again at
	// the next write.
	DeleteStore(ctx context.Context, user, storeID string) (StoreStats, error)
	// Usage and DeleteUser are those of Admin: what a user holds, and deleting it all.
	Admin
}

// ImportSize returns what entries add to a user's usage, as a Quota counts it.
func ImportSize(entries []KeyValue) (bytes, keys int64) {
	for _, kv := range entries {
		bytes += int64(len(kv.Key) + len(kv.Value))
	}
	return bytes, int64(len(entries))
}
